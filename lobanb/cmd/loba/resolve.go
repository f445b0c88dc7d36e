package main

import (
	"context"
	"fmt"
	"io"

	"github.com/loba-dev/loba/models/hub"
)

// resolveModel turns a MODEL argument into a local path: an existing path as is, a hub id
// "org/repo[@revision]" through the Hugging Face cache (downloading what is missing unless
// HF_HUB_OFFLINE is set; HF_TOKEN, HF_HOME and HF_ENDPOINT are honoured).
func resolveModel(ref, variant string, progress io.Writer) (string, error) {
	if hub.IsLocal(ref) {
		return ref, nil
	}
	dir, err := hub.Resolve(context.Background(), ref, hub.Options{
		Variant: variant,
		Logf:    func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) },
	})
	if err != nil {
		return "", err
	}
	return dir, nil
}
