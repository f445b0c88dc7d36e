package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/spf13/pflag"

	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/sd"
)

// presetFlag registers --preset on the flags of `loba inspect`.
func presetFlag(f *pflag.FlagSet, preset *string) {
	f.StringVar(preset, "preset", "", "list the LoRA modules the targeting `PRESET` selects (lierla, c3lier, noxattn, xattn, full): "+
		"kohya name, kind, base shape and rank, and the count per component")
}

// runPreset is `loba inspect --preset P MODEL` on an inspection report: it prints the modules and
// returns the exit code.
func runPreset(rep *sd.Report, preset string, stdout, stderr io.Writer) int {
	if err := printPresetReport(stdout, rep, preset); err != nil {
		fmt.Fprintf(stderr, "loba inspect: %v\n", err)
		return 2
	}
	return 0
}

// printPreset lists the modules preset selects in every adaptable component of the model at dir
// (a diffusers folder, a config-only folder or a single-file checkpoint).
func printPreset(w io.Writer, dir, preset string) error {
	rep, err := sd.Inspect(dir, sd.InspectOptions{HeadersOnly: true}) // the preset needs shapes only
	if err != nil {
		return err
	}
	return printPresetReport(w, rep, preset)
}

// printPresetReport prints, for each of the report's unet, text_encoder and text_encoder_2, one
// line per module resolved by the preset (kohya name, kind, base weight shape, rank; rank 4, alpha
// = rank) and then the component's module count.
func printPresetReport(w io.Writer, rep *sd.Report, preset string) error {
	sdxl := false
	for _, c := range rep.Components {
		if c.Name == lora.TextEncoder2 {
			sdxl = true
		}
		if _, ok := c.Tensors["add_embedding.linear_1.weight"]; ok && c.Name == lora.UNet {
			sdxl = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	found := false
	for _, c := range rep.Components {
		if c.Name != lora.UNet && c.Name != lora.TextEncoder && c.Name != lora.TextEncoder2 {
			continue
		}
		found = true
		decl := map[string]shapes.Shape{}
		for key, e := range c.Tensors {
			if e.DType == "F32" || e.DType == "F16" || e.DType == "BF16" {
				decl[key] = shapes.Make(dtypes.Float32, e.Shape...)
			}
		}
		net, err := lora.Resolve(c.Name, decl, lora.Targets{Preset: preset})
		if errors.Is(err, lora.ErrNoModule) {
			fmt.Fprintf(tw, "%s: 0 modules (preset %s)\n", c.Name, preset)
			continue
		}
		if err != nil {
			return err
		}
		for _, m := range net.Modules {
			name, err := net.KohyaName(m, lora.LayoutDiffusers, sdxl)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", name, m.KindName(), m.BaseShape(), m.Rank)
		}
		fmt.Fprintf(tw, "%s: %d modules (preset %s)\n", c.Name, len(net.Modules), preset)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s has no component LOBA adapts (%s, %s, %s)", rep.Dir, lora.UNet, lora.TextEncoder, lora.TextEncoder2)
	}
	return nil
}
