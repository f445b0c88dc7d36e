package sd

import (
	"context"
	"fmt"
	"io"

	"github.com/loba-dev/loba/models/hub"
	"github.com/loba-dev/loba/models/toyworld"
)

// ResolveModel turns a model reference into a local folder or file: "" is the toy world's base model
// (toyworld.BaseDir), an existing path is itself, and "org/repo[@revision]" is a hub id resolved
// through the Hugging Face cache (downloading what is missing unless HF_HUB_OFFLINE is set; HF_TOKEN,
// HF_HOME and HF_ENDPOINT are honoured). Download progress goes to log (nil: quiet).
func ResolveModel(ref, variant string, log io.Writer) (string, error) {
	if ref == "" {
		return toyworld.BaseDir()
	}
	if hub.IsLocal(ref) {
		return ref, nil
	}
	return hub.Resolve(context.Background(), ref, hub.Options{Variant: variant, Logf: func(f string, a ...any) {
		if log != nil {
			fmt.Fprintf(log, f+"\n", a...)
		}
	}})
}
