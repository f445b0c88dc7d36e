package toybase

import (
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures/tinypipe"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/lobanb/train"
	"github.com/loba-dev/loba/models/schedulers"
	"github.com/loba-dev/loba/models/sd"
)

// TestFinetuneOverfitsABatch: the standard diffusion fine-tune step (UNet and text encoder, v- and
// epsilon-prediction, EMA) drives the loss on one fixed batch down, and the EMA shadows move.
func TestFinetuneOverfitsABatch(t *testing.T) {
	backend := testutil.Backend(t)
	for _, pred := range []string{"epsilon", "v_prediction"} {
		t.Run(pred, func(t *testing.T) {
			p, err := sd.LoadPipeline(tinypipe.First(t, false).Dir, sd.PipelineOptions{Backend: backend, SkipVAE: true})
			require.NoError(t, err)
			var params []train.Param
			for v := range p.Ctx.IterVariables() {
				v.SetTrainable(true)
				params = append(params, train.Param{Var: v, LRScale: 1})
			}
			cfg, err := schedulers.DefaultConfig(schedulers.ClassDDPM)
			require.NoError(t, err)
			cfg.PredictionType = pred
			sched, err := schedulers.New(cfg)
			require.NoError(t, err)
			optCfg, err := train.DefaultOptimizerConfig("adamw")
			require.NoError(t, err)
			opt, err := train.NewOptimizer(optCfg)
			require.NoError(t, err)
			ft, err := NewFinetuneGraph(backend, p.Ctx, p.UNet, p.TextEncoders[0], sched, params, opt,
				FinetuneConfig{UNetScope: "/unet", TextEncoderScope: "/text_encoder", TrainTextEncoder: true, EMADecay: 0.9, MaxGradNorm: 1})
			require.NoError(t, err)

			rng := train.NewRNG(3)
			b, c, h, w := 2, p.UNet.Config.InChannels, 8, 8
			x0 := tensors.FromFlatDataAndDimensions(rng.Normal(b*c*h*w), b, c, h, w)
			noise := tensors.FromFlatDataAndDimensions(rng.Normal(b*c*h*w), b, c, h, w)
			ts := tensors.FromValue([]int64{100, 700})
			ids, err := p.Tokenizers[0].EncodeFixed("a red cube", p.TextEncoders[0].Config.MaxPositionEmbeddings, p.PadIDs[0])
			require.NoError(t, err)
			row := make([]int64, len(ids))
			for i, id := range ids {
				row[i] = int64(id)
			}
			idsT := tensors.FromValue([][]int64{row, row})
			var losses []float32
			for step := 1; step <= 12; step++ {
				out, err := ft.Run(FinetuneInputs{X0: x0, Noise: noise, T: ts, IDs: idsT, LR: 2e-3, Step: int32(step)})
				require.NoError(t, err)
				losses = append(losses, out.Loss)
			}
			t.Logf("%s losses: %v", pred, losses)
			require.Less(t, losses[len(losses)-1], 0.5*losses[0])
			ema := EMAVariables(p.Ctx, params)
			require.Len(t, ema, len(params))
			var k string
			for _, v := range ema {
				k = v.Path()
				break
			}
			require.Contains(t, k, "/"+EMAScope+"/")
		})
	}
}
