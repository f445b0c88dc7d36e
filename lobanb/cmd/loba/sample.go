package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/loba-dev/loba/models/sd"
)

// runSample implements `loba sample MODEL [--lora FILE] --prompt P [--prompt P2] [--strengths -2,0,2]
// [--out grid.png]`: a grid of images, rows = prompts, columns = LoRA strengths (same seed per row).
func runSample(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var prompts multiFlag
	fs.Var(&prompts, "prompt", "prompt of a grid row (repeat for more rows)")
	loraPath := fs.String("lora", "", "kohya LoRA file whose strength the columns sweep")
	strengths := fs.String("strengths", "-2,-1,0,1,2", "comma-separated LoRA strengths (the columns)")
	out := fs.String("out", "grid.png", "output PNG")
	steps := fs.Int("steps", 20, "denoising steps")
	guidance := fs.Float64("guidance", 7, "classifier-free guidance scale")
	seed := fs.Uint64("seed", 0, "seed of the initial latents")
	size := fs.Int("size", 0, "image size in pixels (0: the model's)")
	negative := fs.String("negative", "", "negative prompt")
	tokenizer := fs.String("tokenizer", "", "override the model's tokenizer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loba sample MODEL [--lora FILE] --prompt P [--prompt P2 ...] [--strengths -2,0,2] [--out grid.png]")
		fs.PrintDefaults()
	}
	positional, ok := parseInterspersed(fs, args)
	if !ok {
		return 2
	}
	if len(positional) != 1 || len(prompts) == 0 {
		fs.Usage()
		return 2
	}
	var ss []float64
	if *loraPath != "" {
		for _, f := range strings.Split(*strengths, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				fmt.Fprintf(stderr, "loba sample: --strengths: %q is not a number\n", f)
				return 2
			}
			ss = append(ss, v)
		}
	}
	b, ok := startBackend("sample", stderr)
	if !ok {
		return 2
	}
	dir, err := resolveModel(positional[0], "", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 2
	}
	p, err := sd.LoadPipeline(dir, sd.PipelineOptions{Backend: b, Tokenizer: *tokenizer})
	if err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 2
	}
	if *loraPath != "" {
		if _, err := p.UseLoRA(*loraPath); err != nil {
			fmt.Fprintf(stderr, "loba sample: %v\n", err)
			return 2
		}
	}
	req := sd.SampleRequest{Prompts: prompts, NegativePrompt: *negative, Steps: *steps, GuidanceScale: *guidance,
		Seed: *seed, Strengths: ss, Width: *size, Height: *size}
	if err := p.SaveGrid(*out, req); err != nil {
		fmt.Fprintf(stderr, "loba sample: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d rows × %d columns)\n", *out, len(prompts), max(len(ss), 1))
	return 0
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterspersed parses flags that may come before or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, bool) {
	var positional []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	return positional, true
}
