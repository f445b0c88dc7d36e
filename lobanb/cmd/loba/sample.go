package main

import (
	"fmt"
	"image"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loba-dev/loba/models/sd"
)

// sampleFlags are the flags of `loba sample`.
type sampleFlags struct {
	prompts                             []string
	lora, strengths, out, negative, tok string
	steps, size                         int
	guidance                            float64
	seed                                uint64
	quiet                               bool
}

// newSampleCmd is `loba sample MODEL --prompt P [--prompt P2 …] [--lora FILE] [--strengths LIST] …`.
func newSampleCmd(stdout, stderr io.Writer) *cobra.Command {
	var o sampleFlags
	var strengths []float64
	cmd := &cobra.Command{
		Use:   "sample MODEL --prompt P",
		Short: "a grid of images: rows = prompts, columns = LoRA strengths",
		Long: `Samples a grid of images with the model, and writes it as a PNG: one row per --prompt, one column
per LoRA strength (with --lora). Every image of a row starts from the same noise, so the columns
show what the LoRA changes.`,
		Example: `  loba sample ~/models/sd15 --prompt "a photo of a man" --lora ~/runs/age/lora.safetensors
  loba sample toybase --lora out/lora.safetensors --prompt "a red circle" --strengths -2,-1,0,1,2 --out grid.png`,
		Args: exactArgs("MODEL"),
	}
	cmd.RunE = commandBody(func() (err error) {
		strengths, err = o.check(cmd)
		return err
	}, func(args []string) int { return runSample(args[0], o, strengths, stdout, stderr) })
	f := cmd.Flags()
	f.StringArrayVar(&o.prompts, "prompt", nil, "the `PROMPT` of a grid row (required; repeat the flag for more rows)")
	pathFlag(f, &o.lora, "lora", "", "the kohya LoRA `FILE` whose strength the columns sweep")
	f.StringVar(&o.strengths, "strengths", "-2,-1,0,1,2", "the LoRA strengths of the columns, a comma-separated `LIST` (with --lora)")
	pathFlag(f, &o.out, "out", "grid.png", "the PNG `FILE` to write")
	f.IntVar(&o.steps, "steps", 20, "`N` denoising steps")
	f.Float64Var(&o.guidance, "guidance", 7, "classifier-free guidance `SCALE` (1: no guidance)")
	f.Uint64Var(&o.seed, "seed", 0, "the `SEED` of the initial noise")
	f.IntVar(&o.size, "size", 0, "image size in `PIXELS` (0: the model's)")
	f.StringVar(&o.negative, "negative", "", "the negative `PROMPT`")
	pathFlag(f, &o.tok, "tokenizer", "", "use this tokenizer `PATH` instead of the model's")
	f.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	return cmd
}

// check validates the flags and parses --strengths (nil without --lora).
func (o sampleFlags) check(cmd *cobra.Command) ([]float64, error) {
	if len(o.prompts) == 0 {
		return nil, badValue("--prompt PROMPT is required (one per grid row)")
	}
	if err := firstBad(
		want{o.steps <= 0, "steps", o.steps, "a number of denoising steps > 0"},
		want{!(o.guidance > 0) || math.IsInf(o.guidance, 0), "guidance", o.guidance, "a finite scale > 0 (1: no guidance)"},
		want{o.size < 0, "size", o.size, "a size in pixels > 0 (or 0 for the model's)"},
	); err != nil {
		return nil, err
	}
	if o.lora == "" {
		if cmd.Flags().Changed("strengths") {
			return nil, badValue("--strengths %s: the strengths are those of a LoRA; give --lora FILE", o.strengths)
		}
		return nil, nil
	}
	return parseStrengths(o.strengths)
}

// parseStrengths parses --strengths: finite numbers, comma-separated.
func parseStrengths(list string) ([]float64, error) {
	var ss []float64
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, badValue("--strengths %s: %q is not a number (want finite numbers, comma-separated, e.g. -2,0,2)", list, f)
		}
		ss = append(ss, v)
	}
	return ss, nil
}

// runSample implements `loba sample`: a grid of images, rows = prompts, columns = LoRA strengths
// (same noise per row). Exit codes: 0 written, 1 sampling or writing failed, 2 bad model or LoRA.
func runSample(model string, o sampleFlags, strengths []float64, stdout, stderr io.Writer) int {
	b, ok := startBackend("sample", stderr)
	if !ok {
		return 2
	}
	dir, err := resolveModel(model, "", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 2
	}
	p, err := sd.LoadPipeline(dir, sd.PipelineOptions{Backend: b, Tokenizer: o.tok})
	if err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 2
	}
	defer p.Close()
	if o.lora != "" {
		if _, err := p.UseLoRA(o.lora); err != nil {
			fmt.Fprintf(stderr, "loba sample: %v\n", err)
			return 2
		}
	}
	req := sd.SampleRequest{Prompts: o.prompts, NegativePrompt: o.negative, Steps: o.steps, GuidanceScale: o.guidance,
		Seed: o.seed, Strengths: strengths, Width: o.size, Height: o.size}
	progress, end := imagesBar(stderr, "sampling", o.quiet)
	rows, err := sampleColumns(p, req, progress)
	end()
	if err == nil {
		err = sd.SaveGrid(o.out, rows)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d rows × %d columns)\n", o.out, len(o.prompts), max(len(strengths), 1))
	return 0
}

// sampleColumns samples req's grid one column (strength) at a time, reporting the images done
// after each (progress may be nil). sd.Pipeline has no per-image hook, and a column is the
// smallest call that keeps every image's noise: prompt i draws PCG(seed, i) at every strength.
func sampleColumns(p *sd.Pipeline, req sd.SampleRequest, progress func(done, total int)) ([][]image.Image, error) {
	cols := req.Strengths
	if len(cols) == 0 {
		cols = []float64{0} // one column, no adapter
	}
	total := len(req.Prompts) * len(cols)
	report := func(done int) {
		if progress != nil {
			progress(done, total)
		}
	}
	report(0)
	rows := make([][]image.Image, len(req.Prompts))
	for j, s := range cols {
		col := req
		if len(req.Strengths) > 0 {
			col.Strengths = []float64{s}
		}
		got, err := p.SampleRows(col)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			rows[i] = append(rows[i], got[i][0])
		}
		report((j + 1) * len(req.Prompts))
	}
	return rows, nil
}
