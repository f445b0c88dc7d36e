package toyworld

import (
	"embed"
	"io/fs"
)

//go:embed all:base
var baseFS embed.FS

// BaseFS is the embedded base model folder (base/: model_index.json, unet/, text_encoder/,
// tokenizer/, scheduler/, vae/), rooted at the folder.
func BaseFS() fs.FS {
	sub, err := fs.Sub(baseFS, "base")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// HasBase tells whether the embedded folder holds a model (its model_index.json).
func HasBase() bool {
	_, err := fs.Stat(BaseFS(), "model_index.json")
	return err == nil
}
