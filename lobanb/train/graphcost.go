package train

// What a graph costs, read from the graph itself before it ever runs: the peak of its temporary
// buffers and its floating-point operations. The memory plan (memory.go) builds the run's own
// graphs — the train step, the partial denoise, sampling — shape-only and measures them here.

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/gomlx/compute/support"
	. "github.com/gomlx/gomlx/core/graph"
)

// graphCost is what one execution of a graph needs.
type graphCost struct {
	// PeakBytes is the largest sum of live intermediate buffers when the nodes run in graph order,
	// each output allocated when computed and freed after its last use (the Go backend's execution
	// model; see its EstimatedTemporaryMemory). Parameters (inputs, weights) are not counted.
	PeakBytes int64
	// FLOPs counts 2·multiply-adds of the contractions (DotGeneral) and convolutions, which dominate
	// a UNet; element-wise work is left out.
	FLOPs float64
}

// costOf measures the graph holding outputs; alloc maps a buffer's size to what its allocation
// takes (nil: the size itself).
func costOf(outputs []*Node, alloc func(int64) int64) graphCost {
	if alloc == nil {
		alloc = func(n int64) int64 { return n }
	}
	if len(outputs) == 0 {
		return graphCost{}
	}
	nodes := outputs[0].Graph().Nodes()
	uses := liveUses(nodes, outputs)
	keep := map[*Node]bool{}
	for _, o := range outputs {
		keep[o] = true
	}
	var c graphCost
	var live int64
	for _, n := range nodes {
		if _, needed := uses[n]; !needed || isInput(n) {
			continue
		}
		live += alloc(outputBytes(n))
		c.PeakBytes = max(c.PeakBytes, live)
		c.FLOPs += flopsOf(n)
		for _, in := range n.Inputs() {
			uses[in]--
			if uses[in] == 0 && !isInput(in) && !keep[in] {
				live -= alloc(outputBytes(in))
			}
		}
	}
	return c
}

// liveUses counts, for every node the outputs depend on, how many times it is used by the nodes
// the outputs depend on (an output with no user still maps to 0).
func liveUses(nodes []*Node, outputs []*Node) map[*Node]int {
	uses := make(map[*Node]int, len(nodes))
	stack := append([]*Node(nil), outputs...)
	for _, o := range outputs {
		uses[o] += 0
	}
	seen := map[*Node]bool{}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		for _, in := range n.Inputs() {
			uses[in]++
			stack = append(stack, in)
		}
	}
	return uses
}

// isInput tells nodes whose buffers the graph does not allocate: parameters and constants.
func isInput(n *Node) bool {
	t := n.Type()
	return t == NodeTypeParameter || t == NodeTypeConstant
}

// outputBytes is the size of a node's output (0 for a multi-output node: its split nodes count).
func outputBytes(n *Node) int64 {
	if n.NumOutputs() != 1 {
		return 0
	}
	return int64(n.Shape().ByteSize())
}

// goAlloc is the Go backend's allocation of a buffer of n bytes: its buffer pools round every size
// up to a "two-bit bucket" (2^k or 1.5·2^k bytes).
func goAlloc(n int64) int64 { return int64(support.TwoBitBucketLen(int(n))) }

var contractingAxes = regexp.MustCompile(`lhsContractingAxes=\[([0-9 ]*)\]`)

// flopsOf counts the multiply-adds of a contraction or convolution, twice.
func flopsOf(n *Node) float64 {
	switch n.Type() {
	case NodeTypeDotGeneral:
		m := contractingAxes.FindStringSubmatch(n.String())
		if m == nil {
			return 0
		}
		k := 1.0
		lhs := n.Inputs()[0].Shape()
		for _, f := range strings.Fields(m[1]) {
			if a, err := strconv.Atoi(f); err == nil {
				k *= float64(lhs.Dim(a))
			}
		}
		return 2 * float64(n.Shape().Size()) * k
	case NodeTypeConvGeneral:
		out, kernel := n.Shape(), n.Inputs()[1].Shape()
		if out.Rank() < 2 || out.Dim(1) == 0 {
			return 0
		}
		// NCHW output, OIHW kernel (models/nn): each output element sums kernel.Size()/C_out products.
		return 2 * float64(out.Size()) * float64(kernel.Size()) / float64(out.Dim(1))
	}
	return 0
}
