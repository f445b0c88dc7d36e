package nn

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// SiLU is x·sigmoid(x) (torch.nn.SiLU, "swish").
func SiLU(x *Node) *Node { return Mul(x, Sigmoid(x)) }

// GELU is the exact erf GELU (torch.nn.GELU(approximate="none")).
func GELU(x *Node) *Node {
	return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 0.7071067811865476))))
}

// QuickGELU is x·sigmoid(1.702x), as OpenAI CLIP.
func QuickGELU(x *Node) *Node { return Mul(x, Sigmoid(MulScalar(x, 1.702))) }

// Activation applies one of the activations named in diffusers/transformers configs:
// "silu"/"swish", "gelu", "quick_gelu". It panics on an unknown name.
func Activation(name string, x *Node) *Node {
	switch name {
	case "silu", "swish":
		return SiLU(x)
	case "gelu":
		return GELU(x)
	case "quick_gelu":
		return QuickGELU(x)
	}
	panicUnknownActivation(name)
	return nil
}

func panicUnknownActivation(name string) {
	exceptions.Panicf("nn.Activation: unknown activation %q (want one of silu, swish, gelu, quick_gelu)", name)
}
