package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
	"github.com/loba-dev/loba/internal/testutil"
	"github.com/loba-dev/loba/models/sd"
)

// TestPrintPreset: `loba inspect --preset` on the real SD1.5 and SDXL config folders lists 192/278
// (SD1.5) and 722/788 (SDXL) UNet modules for lierla/c3lier, one line each, plus the text encoders'.
func TestPrintPreset(t *testing.T) {
	testutil.Backend(t)
	real := filepath.Join(fixtures.Root(t), "real", "configs")
	line := regexp.MustCompile(`^lora_(unet|te|te1|te2)_[a-z0-9_]+ +(linear|conv\dx\d) +\[[0-9 ]+\] +4$`)
	for _, c := range []struct {
		model string
		want  map[string][2]int // component → lierla, c3lier
	}{
		{"sd15", map[string][2]int{"unet": {192, 278}, "text_encoder": {72, 72}}},
		{"sdxl_base", map[string][2]int{"unet": {722, 788}, "text_encoder": {72, 72}, "text_encoder_2": {192, 192}}},
	} {
		for i, preset := range []string{"lierla", "c3lier"} {
			t.Run(c.model+"/"+preset, func(t *testing.T) {
				var out bytes.Buffer
				require.NoError(t, printPreset(&out, filepath.Join(real, c.model), preset))
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				modules := 0
				for _, l := range lines {
					if strings.Contains(l, " modules (preset ") {
						continue
					}
					require.Regexp(t, line, l)
					if c.model == "sdxl_base" {
						require.NotRegexp(t, `^lora_te_`, l)
					} else {
						require.NotRegexp(t, `^lora_te[12]_`, l)
					}
					modules++
				}
				total := 0
				for comp, n := range c.want {
					require.Contains(t, out.String(), fmt.Sprintf("%s: %d modules (preset %s)\n", comp, n[i], preset))
					total += n[i]
				}
				require.Equal(t, total, modules)
			})
		}
	}
	// The flag and runPreset, wired as runInspect wires them.
	fs := pflag.NewFlagSet("inspect", pflag.ContinueOnError)
	var preset string
	presetFlag(fs, &preset)
	require.NoError(t, fs.Parse([]string{"--preset", "c3lier", filepath.Join(real, "sd15")}))
	rep, err := sd.Inspect(fs.Arg(0), sd.InspectOptions{})
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, runPreset(rep, preset, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "unet: 278 modules (preset c3lier)")
	require.Equal(t, 2, runPreset(rep, "c3lierr", &stdout, &stderr))
	require.Contains(t, stderr.String(), `unknown preset "c3lierr"`)

	var out, errOut bytes.Buffer
	require.NoError(t, printPreset(&out, filepath.Join(real, "sd15"), "xattn"))
	require.Contains(t, out.String(), "unet: 64 modules (preset xattn)")
	require.Contains(t, out.String(), "text_encoder: 0 modules (preset xattn)")
	err = printPreset(&errOut, filepath.Join(real, "sd15"), "bogus")
	require.ErrorContains(t, err, `unknown preset "bogus"`)
}
