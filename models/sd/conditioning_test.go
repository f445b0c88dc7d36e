package sd

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/safetensors"
)

var testPrompts = []string{
	"a photo of an astronaut riding a horse on mars",
	"",
	strings.Repeat("a breathtaking panoramic landscape of snow capped mountains at golden hour, ", 8),
}

// refEncoder runs a fixture text encoder on its own (clip.Load + TextModel.Exec).
type refEncoder struct {
	dir string
	m   *clip.TextModel
	out func(ids [][]int) *clip.Outputs
}

func newRefEncoder(t *testing.T, dir string) *refEncoder {
	m, ctx, err := clip.Load(dir)
	require.NoError(t, err)
	r := &refEncoder{dir: dir, m: m}
	r.out = func(ids [][]int) *clip.Outputs {
		var flat []int64
		for _, row := range ids {
			for _, id := range row {
				flat = append(flat, int64(id))
			}
		}
		o, err := m.Exec(testutil.Backend(t), ctx, tensors.FromFlatDataAndDimensions(flat, len(ids), len(ids[0])))
		require.NoError(t, err)
		return o
	}
	return r
}

func flat32(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	v, err := tensors.CopyFlatData[float32](x)
	require.NoError(t, err)
	return v
}

// rowsOf splits [N, S, D] flat data into N·S rows of D.
func rowsOf(x []float32, d int) [][]float32 {
	var rows [][]float32
	for i := 0; i < len(x); i += d {
		rows = append(rows, x[i:i+d])
	}
	return rows
}

// concatLast concatenates [N, S, D1] and [N, S, D2] on the last axis (host).
func concatLast(a []float32, d1 int, b []float32, d2 int) []float32 {
	ra, rb := rowsOf(a, d1), rowsOf(b, d2)
	var out []float32
	for i := range ra {
		out = append(append(out, ra[i]...), rb[i]...)
	}
	return out
}

// layerNorm is torch.nn.LayerNorm over rows of D, in float64.
func layerNorm(x, w, b []float32, eps float64) []float32 {
	d := len(w)
	out := make([]float32, len(x))
	for i := 0; i < len(x); i += d {
		var mean, vr float64
		for _, v := range x[i : i+d] {
			mean += float64(v)
		}
		mean /= float64(d)
		for _, v := range x[i : i+d] {
			vr += (float64(v) - mean) * (float64(v) - mean)
		}
		vr /= float64(d)
		for j := range d {
			out[i+j] = float32((float64(x[i+j])-mean)/math.Sqrt(vr+eps)*float64(w[j]) + float64(b[j]))
		}
	}
	return out
}

// requireClose checks relative L2 error (the computations are the same, so float noise only).
func requireClose(t *testing.T, got, want []float32, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	err := testutil.RelErr(got, want)
	require.Less(t, err, 1e-5, "%s: relative error %g", what, err)
}

// fixedIDs tokenizes prompts to fixed length with a pad id.
func fixedIDs(t *testing.T, tok *clip.Tokenizer, prompts []string, seq, pad int) [][]int {
	var ids [][]int
	for _, p := range prompts {
		row, err := tok.EncodeFixed(p, seq, pad)
		require.NoError(t, err)
		ids = append(ids, row)
	}
	return ids
}

func TestEncodePrompts(t *testing.T) {
	tok, err := clip.LoadBPE(bpePath(t))
	require.NoError(t, err)
	for _, tp := range composePipelines(t, "") {
		t.Run(tp.name(), func(t *testing.T) {
			p := tp.load(t, PipelineOptions{SkipVAE: true})
			te1 := newRefEncoder(t, tp.parts["text_encoder"])
			seq := te1.m.Config.MaxPositionEmbeddings
			seq = min(seq, clip.DefaultMaxLength)
			n := len(testPrompts)

			cond, err := p.EncodePrompts(testPrompts, EncodeOptions{})
			require.NoError(t, err)
			o1 := te1.out(fixedIDs(t, tok, testPrompts, seq, tok.EOS)) // SD1.x / TE1: EOS padding
			if !tp.sdxl {
				d := te1.m.Config.HiddenSize
				require.Equal(t, []int{n, seq, d}, cond.Hidden.Shape().Dimensions)
				require.Nil(t, cond.TextEmbeds)
				requireClose(t, flat32(t, cond.Hidden), flat32(t, o1.LastHiddenState), "SD1.x last_hidden_state")

				// Clip skip k: final_layer_norm(hidden_states[-(k+1)]), as diffusers.
				f, err := safetensors.Open(filepath.Join(te1.dir, "model.safetensors"))
				require.NoError(t, err)
				w, _, err := f.Float32s("text_model.final_layer_norm.weight")
				require.NoError(t, err)
				b, _, err := f.Float32s("text_model.final_layer_norm.bias")
				require.NoError(t, err)
				require.NoError(t, f.Close())
				layers := te1.m.Config.NumHiddenLayers
				for k := 1; k <= min(2, layers); k++ {
					skipped, err := p.EncodePrompts(testPrompts, EncodeOptions{ClipSkip: k})
					require.NoError(t, err)
					want := layerNorm(flat32(t, o1.HiddenStates[layers-k]), w, b, te1.m.Config.LayerNormEps)
					requireClose(t, flat32(t, skipped.Hidden), want, "clip skip")
				}
				_, err = p.EncodePrompts(testPrompts, EncodeOptions{ClipSkip: layers + 1})
				require.ErrorContains(t, err, "ClipSkip")
			} else {
				te2 := newRefEncoder(t, tp.parts["text_encoder_2"])
				o2 := te2.out(fixedIDs(t, tok, testPrompts, seq, 0)) // tokenizer_2 pads with "!" = 0
				d1, d2 := te1.m.Config.HiddenSize, te2.m.Config.HiddenSize
				require.Equal(t, []int{n, seq, d1 + d2}, cond.Hidden.Shape().Dimensions)
				require.Equal(t, []int{n, te2.m.Config.ProjectionDim}, cond.TextEmbeds.Shape().Dimensions)
				l1, l2 := len(o1.HiddenStates), len(o2.HiddenStates)
				want := concatLast(flat32(t, o1.HiddenStates[l1-2]), d1, flat32(t, o2.HiddenStates[l2-2]), d2)
				requireClose(t, flat32(t, cond.Hidden), want, "SDXL penultimate concat")
				requireClose(t, flat32(t, cond.TextEmbeds), flat32(t, o2.TextEmbeds), "SDXL pooled text_embeds")
				// Padding with EOS in text_encoder_2 would give other outputs: the pad convention matters.
				wrong := te2.out(fixedIDs(t, tok, testPrompts, seq, tok.EOS))
				require.Greater(t, testutil.RelErr(flat32(t, wrong.HiddenStates[l2-2]), flat32(t, o2.HiddenStates[l2-2])), 1e-3)

				skipped, err := p.EncodePrompts(testPrompts, EncodeOptions{ClipSkip: 1})
				require.NoError(t, err)
				want = concatLast(flat32(t, o1.HiddenStates[l1-3]), d1, flat32(t, o2.HiddenStates[l2-3]), d2)
				requireClose(t, flat32(t, skipped.Hidden), want, "SDXL clip skip 1")
			}
			before := p.Stats().EncodeGraphs
			_, err = p.EncodePrompts(testPrompts, EncodeOptions{})
			require.NoError(t, err)
			require.Equal(t, before, p.Stats().EncodeGraphs, "same shape and options: no new graph")

			t.Run("LongPrompts", func(t *testing.T) { testLongPrompts(t, p, tp, tok, seq) })
		})
	}
}

// testLongPrompts: a short prompt gets an empty second window; a long one its two windows; SDXL's
// pooled output is the first window's.
func testLongPrompts(t *testing.T, p *Pipeline, tp *tinyPipeline, tok *clip.Tokenizer, seq int) {
	prompts := []string{"short prompt", testPrompts[2]}
	long, err := tok.EncodeChunks(testPrompts[2], seq, tok.EOS)
	require.NoError(t, err)
	chunks := len(long)
	require.Greater(t, chunks, 1)
	cond, err := p.EncodePrompts(prompts, EncodeOptions{LongPrompts: true})
	require.NoError(t, err)
	require.Equal(t, []int{2, chunks * seq}, cond.Hidden.Shape().Dimensions[:2])

	// Reference: each window encoded alone, prompt-major, windows concatenated along the sequence.
	windows := func(pad int) [][]int {
		var ids [][]int
		for _, prompt := range prompts {
			cs, err := tok.EncodeChunks(prompt, seq, pad)
			require.NoError(t, err)
			for c := range chunks {
				if c < len(cs) {
					ids = append(ids, cs[c])
				} else {
					empty, err := tok.EncodeFixed("", seq, pad)
					require.NoError(t, err)
					ids = append(ids, empty)
				}
			}
		}
		return ids
	}
	te1 := newRefEncoder(t, tp.parts["text_encoder"])
	o1 := te1.out(windows(tok.EOS))
	if !tp.sdxl {
		requireClose(t, flat32(t, cond.Hidden), flat32(t, o1.LastHiddenState), "long prompts")
		return
	}
	te2 := newRefEncoder(t, tp.parts["text_encoder_2"])
	o2 := te2.out(windows(0))
	l1, l2 := len(o1.HiddenStates), len(o2.HiddenStates)
	want := concatLast(flat32(t, o1.HiddenStates[l1-2]), te1.m.Config.HiddenSize, flat32(t, o2.HiddenStates[l2-2]), te2.m.Config.HiddenSize)
	requireClose(t, flat32(t, cond.Hidden), want, "SDXL long prompts")
	pooled := flat32(t, o2.TextEmbeds)
	pd := te2.m.Config.ProjectionDim
	var first []float32
	for i := range prompts {
		first = append(first, pooled[i*chunks*pd:(i*chunks+1)*pd]...)
	}
	requireClose(t, flat32(t, cond.TextEmbeds), first, "SDXL long prompts pooled (first window)")
}

func TestTimeIDs(t *testing.T) {
	require.Equal(t, []float32{768, 1344, 64, 32, 896, 1152}, TimeIDs(768, 1344, 64, 32, 896, 1152))
	x := TimeIDsTensor(TimeIDs(1, 2, 3, 4, 5, 6), 2)
	require.Equal(t, []int{2, 6}, x.Shape().Dimensions)
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, flat32(t, x))
}

func TestConditioningRowsConcat(t *testing.T) {
	c := &Conditioning{
		Hidden:     tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 3, 2, 2),
		TextEmbeds: tensors.FromFlatDataAndDimensions([]float32{1, 2, 3}, 3, 1),
	}
	r, err := ConditioningRows(c, 2, 0, 2)
	require.NoError(t, err)
	require.Equal(t, []float32{9, 10, 11, 12, 1, 2, 3, 4, 9, 10, 11, 12}, flat32(t, r.Hidden))
	require.Equal(t, []float32{3, 1, 3}, flat32(t, r.TextEmbeds))
	_, err = ConditioningRows(c, 3)
	require.Error(t, err)
	cc, err := ConcatConditionings(c, r)
	require.NoError(t, err)
	require.Equal(t, 6, cc.Len())
	require.Equal(t, []int{6, 1}, cc.TextEmbeds.Shape().Dimensions)
	_, err = ConcatConditionings(c, &Conditioning{Hidden: c.Hidden})
	require.Error(t, err)
	withIDs := *c
	withIDs.TimeIDs = TimeIDsTensor(TimeIDs(8, 8, 0, 0, 8, 8), 3)
	cc, err = ConcatConditionings(&withIDs, &withIDs)
	require.NoError(t, err)
	require.Equal(t, []int{6, 6}, cc.TimeIDs.Shape().Dimensions)
	_, err = ConcatConditionings(&withIDs, c)
	require.ErrorContains(t, err, "TimeIDs")
	_, err = ConcatConditionings(c, &Conditioning{Hidden: tensors.FromFlatDataAndDimensions([]float32{1, 2}, 1, 1, 2), TextEmbeds: c.TextEmbeds})
	require.Error(t, err)
}
