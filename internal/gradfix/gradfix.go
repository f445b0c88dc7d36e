// Package gradfix replaces, in gomlx's graph.VJPRegistration, the reverse-mode gradients (VJPs)
// that gomlx v0.28.8 still gets wrong or lacks for LOBA's models. Each one was re-examined on the
// move from v0.26.0 (TestStockVJPs records the evidence, and fails once upstream fixes one):
//
//   - DotGeneral: v0.28.8 builds the gradients as gemms (upstream PR #428, as this package did
//     for v0.26.0), but its stock VJP transposes the result wrongly when an operand's contracting
//     axes are not in ascending order (e.g. lhs contracting [2, 0], rhs [0, 2]): graph building
//     panics with a shape mismatch. Here each operand's gradient is one DotGeneral of the
//     cotangent with the other operand plus at most one Transpose, for any axes order.
//   - Rsqrt: v0.28.8 registers no gradient at all; here d/dx x^-½ = -½·x^-3/2.
//   - ConvGeneral: v0.28.8's stock VJP panics ("gradient of Convolve with input dilation not
//     defined") for the convolutions nn builds, which pass explicit unit input dilations. Here the
//     input gradient is an input-dilated convolution of the cotangent with the spatially flipped
//     kernel, the kernel gradient a kernel-dilated convolution of the input with the cotangent;
//     strides, kernel dilations, asymmetric padding and any axes layout are handled. Grouped and
//     input-dilated convolutions keep the stock gradient.
//
// Slice's gradient, replaced for v0.26.0 (it needed Pad, which simplego lacked), is gomlx's own
// again: the v0.28.8 Go backend has Pad, and the stock VJP passes the finite-difference tests.
//
// Everything emitted is a standard op (DotGeneral, Transpose, ConvGeneral, Reverse, Slice,
// Concatenate, Reshape, Mul), so the same gradients run on the Go backend and on XLA.
//
// The package registers itself in init(): importing it (models/nn does) is enough. Install and
// Uninstall switch between these gradients and the stock ones; they write a global map, so call
// them only while no graph is being built (tests and benchmarks only).
//
// Node parameters that gomlx keeps private (contracting axes, strides, paddings...) are read with
// reflect, read-only; the package is tied to gomlx v0.28.8's node layout and panics with a clear
// message if that layout changes.
package gradfix

import (
	"reflect"
	"sync"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// fixed lists the node types whose VJP this package replaces.
var fixed = map[NodeType]VJP{
	NodeTypeDotGeneral:  singleOutput(dotGeneralVJP),
	NodeTypeRsqrt:       singleOutput(rsqrtVJP),
	NodeTypeConvGeneral: convGeneralVJP,
}

var (
	mu        sync.Mutex
	stock     = map[NodeType]VJP{} // the VJPs found in VJPRegistration before Install (nil: none)
	installed bool
)

func init() {
	for nodeType := range fixed {
		stock[nodeType] = VJPRegistration[nodeType]
	}
	Install()
}

// Install registers the fixed VJPs in graph.VJPRegistration. It is called by init; it is
// idempotent. Graphs already built keep the gradients they were built with.
func Install() {
	mu.Lock()
	defer mu.Unlock()
	for nodeType, vjp := range fixed {
		VJPRegistration[nodeType] = vjp
	}
	installed = true
}

// Uninstall restores gomlx's stock VJPs (for comparisons in tests and benchmarks).
func Uninstall() {
	mu.Lock()
	defer mu.Unlock()
	for nodeType := range fixed {
		if vjp := stock[nodeType]; vjp != nil {
			VJPRegistration[nodeType] = vjp
		} else {
			delete(VJPRegistration, nodeType)
		}
	}
	installed = false
}

// Installed reports whether the fixed VJPs are the registered ones.
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return installed
}

// NodeTypes lists the node types whose gradient this package replaces.
func NodeTypes() []NodeType {
	return []NodeType{NodeTypeDotGeneral, NodeTypeRsqrt, NodeTypeConvGeneral}
}

// stockVJP returns the stock VJP of nodeType (nil when gomlx has none).
func stockVJP(nodeType NodeType) VJP { return stock[nodeType] }

// singleOutput adapts a single-output VJP to graph.VJP.
func singleOutput(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjpOutputs []*Node, _ shapes.Shape) []*Node {
		return fn(node, vjpOutputs[0])
	}
}

// params returns the struct holding node's private parameters (gomlx's nodeInputs<Op>), after
// checking that its fields are there.
func params(node *Node, fields ...string) reflect.Value {
	inputs := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.IsNil() || inputs.Elem().Kind() != reflect.Pointer {
		exceptions.Panicf("gradfix: cannot read the parameters of node %s: gomlx's Node layout changed (gradfix is written for gomlx v0.28.8)", node)
	}
	s := inputs.Elem().Elem()
	for _, f := range fields {
		if !s.FieldByName(f).IsValid() {
			exceptions.Panicf("gradfix: node %s has no parameter %q: gomlx's node layout changed (gradfix is written for gomlx v0.28.8)", node, f)
		}
	}
	return s
}

// intsOf reads a []int (or an int field, as a 1-element slice) out of a reflected value.
func intsOf(v reflect.Value) []int {
	if v.Kind() == reflect.Int {
		return []int{int(v.Int())}
	}
	out := make([]int, v.Len())
	for i := range out {
		out[i] = int(v.Index(i).Int())
	}
	return out
}

// intOf reads an int out of a reflected value.
func intOf(v reflect.Value) int { return int(v.Int()) }
