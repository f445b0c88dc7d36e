package slider

// ModuleSetting is the adapter configuration of one module after the selectors are applied.
type ModuleSetting struct {
	Rank    int
	Alpha   float64
	LRScale float64 // multiplies train.lr
}

// Resolve applies the selectors to a module that the targets preset selected: path is its diffusers
// module path (e.g. "mid_block.attentions.0.transformer_blocks.0.attn1.to_q") and conv tells a Conv2d
// (conv_rank / conv_alpha) from a Linear. It returns false when a selector excludes the module. The
// network must be normalized (Load and Normalize do it).
func (n *Network) Resolve(path string, conv bool) (ModuleSetting, bool) {
	s := ModuleSetting{Rank: n.Rank, LRScale: 1}
	if n.Alpha != nil {
		s.Alpha = *n.Alpha
	}
	if conv {
		s.Rank, s.Alpha = n.ConvRank, n.ConvAlpha
	}
	for _, sel := range n.Selectors {
		re, err := compileSelector(sel.Match)
		if err != nil || !re.MatchString(path) {
			continue
		}
		if sel.Exclude {
			return ModuleSetting{}, false
		}
		if sel.Rank > 0 {
			s.Rank = sel.Rank
		}
		if sel.Alpha != nil {
			s.Alpha = *sel.Alpha
		}
		if sel.LRScale != nil {
			s.LRScale = *sel.LRScale
		}
	}
	return s, true
}
