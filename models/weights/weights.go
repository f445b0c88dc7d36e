// Package weights moves checkpoint weights in and out of a gomlx context.
//
// The rule is identity: a diffusers/transformers key is a scope path plus a variable name, with "."
// read as the scope separator. `down_blocks.0.resnets.1.conv1.weight` under a component root ctx is
// the variable "weight" in scope ctx.At("down_blocks").At("0").At("resnets").At("1").At("conv1").
// No rename, no transpose. Other namings (LDM/SAI single files, OpenCLIP) are converted only in
// models/singlefile, by tables generated from the real configs.
//
// Loading is strict: a model first lists the variables its graph declares (Declared, a shape-only
// build that allocates no weights), then LoadFiles checks the files against that list and reports
// every missing, unexpected and mis-shaped key together, naming the files.
package weights

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// KeyToScope splits a checkpoint key into scope parts and variable name:
// "a.0.weight" → ["a", "0"], "weight".
func KeyToScope(key string) (scope []string, name string) {
	parts := strings.Split(key, ".")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// ScopeToKey joins a gomlx scope ("/a/0", relative to the component root) and a variable name into a
// checkpoint key ("a.0.weight"). root is the component root scope to strip ("" or "/" for the top).
func ScopeToKey(root, scope, name string) string {
	rel := strings.TrimPrefix(scope, strings.TrimSuffix(root, model.ScopeSeparator))
	rel = strings.Trim(rel, model.ScopeSeparator)
	if rel == "" {
		return name
	}
	return strings.ReplaceAll(rel, model.ScopeSeparator, ".") + "." + name
}

// In returns ctx scoped to the module path of a dotted key prefix: In(ctx, "down_blocks.0") =
// ctx.At("down_blocks").At("0").
func In(ctx *model.Scope, dotted string) *model.Scope {
	if dotted == "" {
		return ctx
	}
	for _, p := range strings.Split(dotted, ".") {
		ctx = ctx.At("%s", p)
	}
	return ctx
}

var (
	shapeBackendOnce sync.Once
	shapeBackend     compute.Backend
	shapeBackendErr  error
)

// ShapeBackend is the pure-Go backend used to build graphs that are never executed (shape-only
// model builds). It never downloads anything.
func ShapeBackend() (compute.Backend, error) {
	shapeBackendOnce.Do(func() {
		shapeBackend, shapeBackendErr = compute.NewWithConfig("go")
	})
	return shapeBackend, shapeBackendErr
}

// Declared builds `build` once on a fresh context — graph only, never executed, so no weight is
// allocated — and returns every variable it declared as checkpoint key → shape.
func Declared(build func(ctx *model.Scope, g *graph.Graph)) (map[string]shapes.Shape, error) {
	backend, err := ShapeBackend()
	if err != nil {
		return nil, fmt.Errorf("weights.Declared: creating the shape backend: %w", err)
	}
	ctx := model.NewStore().RootScope()
	err = exceptions.TryCatch[error](func() {
		g := graph.NewGraph(backend, "declare")
		build(ctx, g)
	})
	if err != nil {
		return nil, fmt.Errorf("weights.Declared: building the model graph: %w", err)
	}
	decl := make(map[string]shapes.Shape)
	for v := range ctx.IterVariables() {
		decl[ScopeToKey("", v.Scope(), v.Name())] = v.Shape()
	}
	return decl, nil
}

// SortedKeys returns the keys of a declared map, sorted.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParamCount sums the element counts of a declared map.
func ParamCount(decl map[string]shapes.Shape) int64 {
	var n int64
	for _, s := range decl {
		n += int64(s.Size())
	}
	return n
}
