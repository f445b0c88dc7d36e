package vae

import "strings"

// legacyAttnNames maps the pre-0.14 diffusers AttentionBlock weight names to the Attention ones,
// as diffusers ModelMixin._fix_state_dict_keys_on_load does for modules built with
// _from_deprecated_attn_block (the VAE mid-block attentions). group_norm keeps its name.
var legacyAttnNames = map[string]string{
	"query":     "to_q",
	"key":       "to_k",
	"value":     "to_v",
	"proj_attn": "to_out.0",
}

// RenameLegacyKey renames a legacy VAE attention key, e.g.
// "encoder.mid_block.attentions.0.query.weight" → "encoder.mid_block.attentions.0.to_q.weight"
// (the SD1.5 hub fp32 VAE file uses these names). Only keys of the encoder/decoder mid-block
// attentions are renamed; ok reports whether key was one of them.
func RenameLegacyKey(key string) (renamed string, ok bool) {
	parts := strings.Split(key, ".")
	// <encoder|decoder>.mid_block.attentions.<i>.<legacy>.<weight|bias>
	if len(parts) != 6 || (parts[0] != "encoder" && parts[0] != "decoder") ||
		parts[1] != "mid_block" || parts[2] != "attentions" || (parts[5] != "weight" && parts[5] != "bias") {
		return key, false
	}
	newName, found := legacyAttnNames[parts[4]]
	if !found {
		return key, false
	}
	return strings.Join(parts[:4], ".") + "." + newName + "." + parts[5], true
}
