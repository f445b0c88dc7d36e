// Package gradfix replaces, in gomlx v0.26.0's graph.VJPRegistration, the reverse-mode gradients
// (VJPs) that are missing, unusable on simplego or pathologically expensive for LOBA's models:
//
//   - DotGeneral and Dot: v0.26.0 builds them as a broadcast Mul + ReduceSum, which materialises a
//     batch×M×N×K intermediate (4.3 GB for one 1024³ matmul on simplego; CUDA-core reductions on
//     XLA). Here each operand's gradient is one DotGeneral of the cotangent with the other operand
//     plus at most one Transpose — two gemms, as upstream gomlx PR #428 does.
//   - Rsqrt: v0.26.0 registers no gradient at all; here d/dx x^-½ = -½·x^-3/2.
//   - ConvGeneral: v0.26.0 uses Reverse (absent on simplego) and assumes the input and output
//     share one axes layout. Here the input gradient is an input-dilated convolution of the
//     cotangent with the spatially flipped kernel (flipped with Slice+Concatenate), the kernel
//     gradient a kernel-dilated convolution of the input with the cotangent; strides, kernel
//     dilations, asymmetric padding and any axes layout are handled. Grouped and input-dilated
//     convolutions keep the stock gradient.
//   - Slice: v0.26.0 uses Pad (absent on simplego). Here the cotangent is zero-padded with
//     Concatenate (strided slices interleave zeros with Concatenate+Reshape).
//
// Everything emitted is a standard op (DotGeneral, Transpose, ConvGeneral, Slice, Concatenate,
// Reshape, Mul), so the same gradients run on simplego and on XLA.
//
// The package registers itself in init(): importing it (models/nn does) is enough. Install and
// Uninstall switch between these gradients and the stock ones; they write a global map, so call
// them only while no graph is being built (tests and benchmarks only).
//
// Node parameters that gomlx keeps private (contracting axes, strides, paddings...) are read with
// reflect, read-only; the package is tied to gomlx v0.26.0's node layout and panics with a clear
// message if that layout changes.
package gradfix

import (
	"reflect"
	"sync"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// fixed lists the node types whose VJP this package replaces.
var fixed = map[NodeType]VJP{
	NodeTypeDotGeneral:  singleOutput(dotGeneralVJP),
	NodeTypeDot:         singleOutput(dotVJP),
	NodeTypeRsqrt:       singleOutput(rsqrtVJP),
	NodeTypeConvGeneral: convGeneralVJP,
	NodeTypeSlice:       singleOutput(sliceVJP),
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

// Uninstall restores the stock gomlx v0.26.0 VJPs (for comparisons in tests and benchmarks).
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
	return []NodeType{NodeTypeDotGeneral, NodeTypeDot, NodeTypeRsqrt, NodeTypeConvGeneral, NodeTypeSlice}
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
		exceptions.Panicf("gradfix: cannot read the parameters of node %s: gomlx's Node layout changed (gradfix is written for gomlx v0.26.0)", node)
	}
	s := inputs.Elem().Elem()
	for _, f := range fields {
		if !s.FieldByName(f).IsValid() {
			exceptions.Panicf("gradfix: node %s has no parameter %q: gomlx's node layout changed (gradfix is written for gomlx v0.26.0)", node, f)
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
