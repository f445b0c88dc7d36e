package slider

import "github.com/loba-dev/loba/models/lora"

// LoRATargets is the adapter targeting of the preset's network section, as models/lora resolves it
// (one mechanism for presets, `loba inspect --preset` and the trainer).
func (n *Network) LoRATargets() lora.Targets {
	t := lora.Targets{Preset: n.Targets, Rank: n.Rank, ConvRank: n.ConvRank, ConvAlpha: n.ConvAlpha}
	if n.Alpha != nil {
		t.Alpha = *n.Alpha
	}
	for _, s := range n.Selectors {
		sel := lora.Selector{Match: s.Match, Exclude: s.Exclude, Rank: s.Rank}
		if s.Alpha != nil {
			sel.Alpha = *s.Alpha
		}
		if s.LRScale != nil {
			sel.LRScale = *s.LRScale
		}
		t.Selectors = append(t.Selectors, sel)
	}
	return t
}
