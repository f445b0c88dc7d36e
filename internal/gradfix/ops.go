package gradfix

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// rsqrtVJP: y = x^-½, dy/dx = -½·x^-3/2 = -½·y³.
func rsqrtVJP(node, v *Node) []*Node {
	y := node
	return []*Node{MulScalar(Mul(v, Mul(y, Mul(y, y))), -0.5)}
}
