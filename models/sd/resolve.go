package sd

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/loba-dev/loba/models/hub"
	"github.com/loba-dev/loba/models/toyworld"
	"github.com/loba-dev/loba/models/weights"
)

// ResolveModel turns a model reference into a local folder or file: "" is the toy world's base model
// (toyworld.BaseDir), an existing path is itself (a folder, or a .safetensors single-file checkpoint
// that LoadPipeline reads), and "org/repo[@revision]" is a hub id resolved through the Hugging Face
// cache (downloading what is missing unless HF_HUB_OFFLINE is set; HF_TOKEN, HF_HOME and HF_ENDPOINT
// are honoured). A pickle checkpoint (.ckpt, .pt, .bin, …) is refused with the weights.RefusePickle
// error, existing or not, and a missing local path is an error naming it. Download progress goes
// to log (nil: quiet).
func ResolveModel(ref, variant string, log io.Writer) (string, error) {
	if ref == "" {
		return toyworld.BaseDir()
	}
	if hub.IsLocal(ref) {
		st, statErr := os.Stat(ref)
		if statErr != nil || !st.IsDir() {
			if err := weights.RefusePickle(ref); err != nil {
				return "", err
			}
		}
		if statErr != nil {
			return "", fmt.Errorf("model %s: %w (want a diffusers folder, a .safetensors single-file checkpoint or a hub id org/repo)", ref, statErr)
		}
		return ref, nil
	}
	return hub.Resolve(context.Background(), ref, hub.Options{Variant: variant, Progress: log, Logf: func(f string, a ...any) {
		if log != nil {
			fmt.Fprintf(log, f+"\n", a...)
		}
	}})
}
