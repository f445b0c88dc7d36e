// Package tinypipe composes tiny diffusers pipeline folders from the golden fixture cases
// ($LOBA_FIXTURES; see the fixtures README, "Composing the tiny cases into pipelines"): one per UNet
// case, with the text encoders, VAE and scheduler that fit it (sizes read from the configs), a
// model_index.json and tokenizer folders as the hub lays them out. Tests use it through sdtest; the
// notebooks' LOBA_TEST_SIZE switch uses it to run the SD1.5 and SDXL notebooks on a CPU.
package tinypipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/models/clip"
	"github.com/loba-dev/loba/models/schedulers"
)

// Pipeline is a composed pipeline folder.
type Pipeline struct {
	Dir   string            // the folder: model_index.json, component symlinks, scheduler/, tokenizer(_2)/
	SDXL  bool              // SDXL-shaped (UNet with addition_embed_type text_time)
	Parts map[string]string // component → fixture case folder
}

// Name is the UNet fixture case the pipeline is built around.
func (tp *Pipeline) Name() string { return filepath.Base(tp.Parts["unet"]) }

// BPEPath is the CLIP BPE merges file of the fixtures.
func BPEPath(fixtures string) string {
	return filepath.Join(fixtures, "tokenizer", "bpe_simple_vocab_16e6.txt.gz")
}

// Cases lists the case folders of one kind (e.g. "unet") under the fixture root, sorted; none is an
// error naming the folder.
func Cases(root, kind string) ([]string, error) { return fixtures.Cases(root, kind) }

type clipCfg struct {
	Architectures []string `json:"architectures"`
	HiddenSize    int      `json:"hidden_size"`
	ProjectionDim int      `json:"projection_dim"`
	VocabSize     int      `json:"vocab_size"`
}

func (c clipCfg) withProjection() bool {
	return len(c.Architectures) > 0 && c.Architectures[0] == "CLIPTextModelWithProjection"
}

// ReadJSON decodes a JSON file; the error names it.
func ReadJSON(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Compose builds one pipeline folder per UNet fixture case under outRoot (outRoot/<unet case>,
// replaced if present). scheduler picks the scheduler config file ("" = an epsilon DDIM case for
// SD1.x, an Euler case for SDXL). A UNet case no fixture components fit is left out and named in
// notes; an unreadable fixture is an error.
func Compose(fixtures, outRoot, scheduler string) (out []*Pipeline, notes []string, err error) {
	clipDirs, err := Cases(fixtures, "clip_text")
	if err != nil {
		return nil, nil, err
	}
	vaeDirs, err := Cases(fixtures, "vae")
	if err != nil {
		return nil, nil, err
	}
	schedDirs, err := Cases(fixtures, "scheduler")
	if err != nil {
		return nil, nil, err
	}
	unetDirs, err := Cases(fixtures, "unet")
	if err != nil {
		return nil, nil, err
	}
	clips := map[string]clipCfg{}
	for _, d := range clipDirs {
		var c clipCfg
		if err := ReadJSON(filepath.Join(d, "config.json"), &c); err != nil {
			return nil, nil, err
		}
		clips[d] = c
	}
	vaeLatents := map[string]int{}
	for _, d := range vaeDirs {
		var c struct {
			LatentChannels int `json:"latent_channels"`
		}
		if err := ReadJSON(filepath.Join(d, "config.json"), &c); err != nil {
			return nil, nil, err
		}
		vaeLatents[d] = c.LatentChannels
	}
	schedulerClass := map[string]string{}
	for _, d := range schedDirs {
		var c struct {
			ClassName      string `json:"_class_name"`
			PredictionType string `json:"prediction_type"`
		}
		if err := ReadJSON(filepath.Join(d, "config.json"), &c); err != nil {
			return nil, nil, err
		}
		if c.PredictionType == "epsilon" {
			schedulerClass[d] = c.ClassName
		}
	}
	pickScheduler := func(class string) (string, error) {
		for _, d := range schedDirs {
			if schedulerClass[d] == class {
				return filepath.Join(d, "config.json"), nil
			}
		}
		return "", fmt.Errorf("no epsilon-prediction %s scheduler case under %s", class, fixtures)
	}
	for _, unetDir := range unetDirs {
		var u struct {
			InChannels        int     `json:"in_channels"`
			CrossAttention    any     `json:"cross_attention_dim"`
			AdditionEmbedType *string `json:"addition_embed_type"`
			AddTimeDim        *int    `json:"addition_time_embed_dim"`
			ProjectionInput   *int    `json:"projection_class_embeddings_input_dim"`
		}
		if err := ReadJSON(filepath.Join(unetDir, "config.json"), &u); err != nil {
			return nil, nil, err
		}
		cross := 0
		switch v := u.CrossAttention.(type) {
		case float64:
			cross = int(v)
		case []any:
			if len(v) > 0 {
				if f, ok := v[0].(float64); ok {
					cross = int(f)
				}
			}
		}
		tp := &Pipeline{Dir: filepath.Join(outRoot, filepath.Base(unetDir)), Parts: map[string]string{"unet": unetDir},
			SDXL: u.AdditionEmbedType != nil && *u.AdditionEmbedType == "text_time"}
		for _, d := range vaeDirs {
			if vaeLatents[d] == u.InChannels && tp.Parts["vae"] == "" {
				tp.Parts["vae"] = d
			}
		}
		usable := func(c clipCfg) bool { return c.VocabSize >= 49408 } // real CLIP BPE ids
		if tp.SDXL {
			for _, d2 := range clipDirs {
				c2 := clips[d2]
				if tp.Parts["text_encoder_2"] != "" || !usable(c2) || !c2.withProjection() || u.AddTimeDim == nil || u.ProjectionInput == nil ||
					c2.ProjectionDim+6**u.AddTimeDim != *u.ProjectionInput {
					continue
				}
				for _, d1 := range clipDirs {
					c1 := clips[d1]
					if d1 != d2 && usable(c1) && c1.HiddenSize+c2.HiddenSize == cross && tp.Parts["text_encoder_2"] == "" {
						tp.Parts["text_encoder"], tp.Parts["text_encoder_2"] = d1, d2
					}
				}
			}
		} else {
			for _, d := range clipDirs {
				if c := clips[d]; usable(c) && c.HiddenSize == cross && tp.Parts["text_encoder"] == "" {
					tp.Parts["text_encoder"] = d
				}
			}
		}
		want := []string{"unet", "vae", "text_encoder"}
		if tp.SDXL {
			want = append(want, "text_encoder_2")
		}
		missing := ""
		for _, comp := range want {
			if tp.Parts[comp] == "" {
				missing = comp
			}
		}
		if missing != "" {
			notes = append(notes, fmt.Sprintf("unet case %s: no fixture %s fits it; not composed into a pipeline", filepath.Base(unetDir), missing))
			continue
		}
		sched := scheduler
		if sched == "" {
			class := schedulers.ClassDDIM
			if tp.SDXL {
				class = schedulers.ClassEulerDiscrete
			}
			if sched, err = pickScheduler(class); err != nil {
				return nil, nil, err
			}
		}
		if err := write(tp, sched, BPEPath(fixtures)); err != nil {
			return nil, nil, fmt.Errorf("composing %s: %w", tp.Dir, err)
		}
		out = append(out, tp)
	}
	return out, notes, nil
}

// write lays out one pipeline folder.
func write(tp *Pipeline, sched, bpe string) error {
	if err := os.RemoveAll(tp.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(tp.Dir, "scheduler"), 0o755); err != nil {
		return err
	}
	index := map[string]any{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.40.0.dev0",
		"scheduler": []string{"diffusers", "DDIMScheduler"}, "unet": []string{"diffusers", "UNet2DConditionModel"},
		"vae": []string{"diffusers", "AutoencoderKL"}, "text_encoder": []string{"transformers", "CLIPTextModel"},
		"tokenizer": []string{"transformers", "CLIPTokenizer"}}
	if tp.SDXL {
		index["_class_name"] = "StableDiffusionXLPipeline"
		index["text_encoder_2"] = []string{"transformers", "CLIPTextModelWithProjection"}
		index["tokenizer_2"] = []string{"transformers", "CLIPTokenizer"}
	}
	for comp, d := range tp.Parts {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(tp.Dir, comp)); err != nil {
			return err
		}
	}
	// tokenizer/ pads with <|endoftext|>; SDXL's tokenizer_2/ with "!" (id 0), as the hub folders.
	tok, err := clip.LoadBPE(bpe)
	if err != nil {
		return err
	}
	if err := tok.SaveTokenizer(filepath.Join(tp.Dir, "tokenizer")); err != nil {
		return err
	}
	if tp.SDXL {
		tok.Pad = 0
		if err := tok.SaveTokenizer(filepath.Join(tp.Dir, "tokenizer_2")); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tp.Dir, "model_index.json"), b, 0o644); err != nil {
		return err
	}
	sb, err := os.ReadFile(sched)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tp.Dir, "scheduler", "scheduler_config.json"), sb, 0o644)
}

// First composes the fixtures under outRoot and returns the first pipeline of the given shape.
func First(fixtures, outRoot string, sdxl bool) (*Pipeline, error) {
	all, notes, err := Compose(fixtures, outRoot, "")
	if err != nil {
		return nil, err
	}
	for _, tp := range all {
		if tp.SDXL == sdxl {
			return tp, nil
		}
	}
	kind := "SD1.x"
	if sdxl {
		kind = "SDXL"
	}
	return nil, errors.Join(append([]error{fmt.Errorf("no %s-shaped pipeline could be composed from %s", kind, fixtures)}, joinNotes(notes)...)...)
}

func joinNotes(notes []string) []error {
	var out []error
	for _, n := range notes {
		out = append(out, errors.New(n))
	}
	return out
}
