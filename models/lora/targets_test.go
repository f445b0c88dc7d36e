package lora

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/loba-dev/loba/internal/fixtures"
)

func paths(n *Network) map[string]*Module {
	out := map[string]*Module{}
	for _, m := range n.Modules {
		out[m.Path] = m
	}
	return out
}

// TestSelectors checks preset and selector composition on the real SD1.5 UNet.
func TestSelectors(t *testing.T) {
	decl := declaredUNet(t, filepath.Join(fixtures.Root(t), "real", "configs", "sd15", "unet", "config.json"))
	resolve := func(tg Targets) *Network {
		t.Helper()
		n, err := Resolve(UNet, decl, tg)
		require.NoError(t, err)
		return n
	}
	lierla := paths(resolve(Targets{}))
	require.Len(t, lierla, 192, `"" is lierla`)

	// noxattn = lierla without attn2; xattn = attn2 only; exclude composes to the same set.
	nox := paths(resolve(Targets{Preset: PresetNoXAttn}))
	xattn := paths(resolve(Targets{Preset: PresetXAttn}))
	require.Len(t, xattn, 16*4)
	require.Len(t, nox, 192-16*4)
	for p := range lierla {
		_, inX := xattn[p]
		_, inN := nox[p]
		require.True(t, inX != inN, p)
		require.Equal(t, strings.Contains(p, ".attn2."), inX, p)
	}
	require.Equal(t, nox, paths(resolve(Targets{Selectors: []Selector{{Match: "attn2", Exclude: true}}})))

	// full: every Linear/Conv2d, including conv_in/conv_out/time_embedding.
	full := paths(resolve(Targets{Preset: PresetFull}))
	for _, p := range []string{"conv_in", "conv_out", "time_embedding.linear_1", "time_embedding.linear_2"} {
		require.Contains(t, full, p)
	}
	require.Len(t, full, 278+4)

	// Per-selector rank/alpha/lr on a block; regex on to_k; later selectors override earlier ones.
	n := resolve(Targets{Preset: PresetC3Lier, Rank: 8, Alpha: 4, ConvRank: 16, ConvAlpha: 2, Selectors: []Selector{
		{Match: "mid_block", Rank: 2, Alpha: 1, LRScale: 0.5},
		{Match: `re:\.to_k$`, Rank: 3},
		{Match: "up_blocks.*.resnets", Exclude: true},
	}})
	for _, m := range n.Modules {
		switch {
		case strings.HasPrefix(m.Path, "up_blocks.") && strings.Contains(m.Path, ".resnets."):
			t.Fatalf("excluded module %s selected", m.Path)
		case strings.HasSuffix(m.Path, ".to_k"):
			require.Equal(t, 3, m.Rank, m.Path)
		case strings.HasPrefix(m.Path, "mid_block."):
			require.Equal(t, 2, m.Rank, m.Path)
		case m.Kind == Conv && m.Kernel == 3:
			require.Equal(t, min(16, m.In, m.Out), m.Rank, m.Path)
			require.Equal(t, 2.0, m.Alpha, m.Path)
		default:
			require.Equal(t, 8, m.Rank, m.Path)
			require.Equal(t, 4.0, m.Alpha, m.Path)
		}
		if strings.HasPrefix(m.Path, "mid_block.") {
			require.Equal(t, 1.0, m.Alpha, m.Path)
			require.Equal(t, 0.5, m.LRScale, m.Path)
		} else {
			require.Equal(t, 1.0, m.LRScale, m.Path)
		}
	}
	// Alpha 0 = rank (scale 1).
	for _, m := range resolve(Targets{Rank: 6}).Modules {
		require.Equal(t, 6.0, m.Alpha)
		require.Equal(t, 1.0, m.Scale())
	}

	// Block selectors with wildcards build a set from PresetNone; an exact path adds one module.
	up := paths(resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "up_blocks.*.attentions"}}}))
	nUp := 0
	for p := range lierla {
		if strings.HasPrefix(p, "up_blocks.") {
			nUp++
			require.Contains(t, up, p)
		}
	}
	require.Len(t, up, nUp)
	one := resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "down_blocks.1.resnets.0.conv1", Rank: 2}}})
	require.Len(t, one.Modules, 1)
	require.Equal(t, "down_blocks.1.resnets.0.conv1", one.Modules[0].Path)
	// "down_blocks.1" must not match down_blocks.10… (segment-wise matching).
	for _, m := range resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "down_blocks.1"}}}).Modules {
		require.True(t, strings.HasPrefix(m.Path, "down_blocks.1."), m.Path)
	}
	// Module types.
	for _, m := range resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "proj"}}}).Modules {
		require.Regexp(t, `\.proj_(in|out)$`, m.Path)
	}
	require.Len(t, resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "sampler"}}}).Modules, 6)
	require.Len(t, resolve(Targets{Preset: PresetNone, Selectors: []Selector{{Match: "ff"}}}).Modules, 32)

	// Errors name the bad value and list the valid ones.
	for _, c := range []struct {
		tg   Targets
		want []string
	}{
		{Targets{Preset: "lierlaa"}, []string{`"lierlaa"`, "lierla, c3lier, noxattn, xattn, full, none"}},
		{Targets{Selectors: []Selector{{Match: "down_blocks.9"}}}, []string{`"down_blocks.9"`, "matches no module", "attn1", "re:<regexp>"}},
		{Targets{Selectors: []Selector{{Match: "attn3"}}}, []string{`"attn3"`, "matches no module", "attn2"}},
		{Targets{Selectors: []Selector{{Match: "down-blocks/1"}}}, []string{`bad selector "down-blocks/1"`, "mid_block"}},
		{Targets{Selectors: []Selector{{Match: "re:(["}}}, []string{`bad regexp in selector "re:(["`}},
		{Targets{Selectors: []Selector{{Match: ""}}}, []string{`bad selector ""`}},
		{Targets{Selectors: []Selector{{Match: "attn1", Rank: -1}}}, []string{`selector 0 "attn1"`, "negative"}},
		{Targets{Preset: PresetNone}, []string{"select no module"}},
	} {
		_, err := Resolve(UNet, decl, c.tg)
		require.Error(t, err, "%+v", c.tg)
		for _, s := range c.want {
			require.ErrorContains(t, err, s, "%+v", c.tg)
		}
	}
	// A type selector may match nothing in a component (attn2 on a text encoder).
	te := declaredCLIP(t, filepath.Join(fixtures.Root(t), "real", "configs", "sd15", "text_encoder", "config.json"))
	n, err := Resolve(TextEncoder, te, Targets{Selectors: []Selector{{Match: "attn2", Rank: 8}, {Match: "mlp", Exclude: true}}})
	require.NoError(t, err)
	require.Len(t, n.Modules, 48)
}
