package lora

import (
	"strings"

	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// adapter is the nn.Adapter of one Network (ports the forward of kohya's LoRAModule:
// org_forward(x) + lora_up(lora_down(x)) · multiplier · scale).
type adapter struct {
	net        *Network
	ctxRoot    *model.Scope
	compScope  string // "" when the component's weights sit at the root, else "/unet"
	multiplier *Node  // nil: 1
}

// Adapter returns the nn.Adapter that adds m·m_l·(α/r)·up(down(x)) to the layers of this component
// that the network targets, m_l being the module's layer multiplier (SetLayerMultipliers; 1 unset). ctxRoot is the context holding the "lora" scope (the one passed to Init
// or SetWeights); componentScope is the scope of the component's model root ("/" when the UNet's
// weights sit at the root, "/unet" when at ctx.At("unet")), used to turn a layer's ctx.Scope()
// into its module path. multiplier is a scalar node, a [B] node (one value per sample, broadcast
// over the layer's batch axis 0), or nil for 1. The update is computed in the LoRA variables'
// dtype and converted back to the layer's.
func (n *Network) Adapter(ctxRoot *model.Scope, componentScope string, multiplier *Node) nn.Adapter {
	cs := strings.TrimRight(componentScope, "/")
	if cs != "" && !strings.HasPrefix(cs, "/") {
		cs = "/" + cs
	}
	return &adapter{net: n, ctxRoot: ctxRoot, compScope: cs, multiplier: multiplier}
}

// module finds the targeted module of a layer scope, or nil.
func (a *adapter) module(ctx *model.Scope) *Module {
	scope := ctx.Scope()
	var rel string
	if a.compScope == "" {
		rel = strings.TrimPrefix(scope, "/")
	} else {
		var ok bool
		if rel, ok = strings.CutPrefix(scope, a.compScope+"/"); !ok {
			return nil
		}
	}
	return a.net.Module(strings.ReplaceAll(rel, "/", "."))
}

// weights returns the down and up weight nodes of m.
func (a *adapter) weights(g *Graph, m *Module) (down, up *Node) {
	for _, w := range []string{DownScope, UpScope} {
		c := a.net.moduleCtx(a.ctxRoot, m, w)
		v := c.GetVariable(VarName)
		if v == nil {
			exceptions.Panicf("lora: variable %s/%s of %s %s is missing: call Init or SetWeights before building the graph",
				c.Scope(), VarName, a.net.Component, m.Path)
		}
		if w == DownScope {
			down = v.NodeValue(g)
		} else {
			up = v.NodeValue(g)
		}
	}
	return down, up
}

// scale multiplies h ([B, …]) by m·m_l·(α/r), with m_l the module's layer multiplier
// (SetLayerMultipliers) and a [B] multiplier m broadcast over axis 0.
func (a *adapter) scale(ctx *model.Scope, h *Node, m *Module) *Node {
	s := Scalar(h.Graph(), h.DType(), m.Scale()*a.net.LayerMultiplier(m.Path))
	if a.multiplier != nil {
		mult := ConvertDType(a.multiplier, h.DType())
		switch mult.Rank() {
		case 0:
		case 1:
			if mult.Shape().Dim(0) != h.Shape().Dim(0) {
				exceptions.Panicf("lora at %q: per-sample multiplier %s does not fit the layer's batch axis of %s",
					ctx.Scope(), a.multiplier.Shape(), h.Shape())
			}
			dims := make([]int, h.Rank())
			for i := range dims {
				dims[i] = 1
			}
			dims[0] = mult.Shape().Dim(0)
			mult = Reshape(mult, dims...) // [B, 1, …]
		default:
			exceptions.Panicf("lora at %q: multiplier must be a scalar or [B], got %s", ctx.Scope(), a.multiplier.Shape())
		}
		s = Mul(s, mult)
	}
	return Mul(h, s)
}

// LinearDelta implements nn.Adapter: x [..., in] → m·(α/r)·up(down(x)) [..., out].
func (a *adapter) LinearDelta(ctx *model.Scope, x *Node, out int) *Node {
	m := a.module(ctx)
	if m == nil {
		return nil
	}
	if m.Kind != Linear || m.In != x.Shape().Dim(-1) || m.Out != out {
		exceptions.Panicf("lora at %q: module %s (%s, in %d, out %d) does not fit a Linear layer with x %s and out %d",
			ctx.Scope(), m.Path, m.Kind, m.In, m.Out, x.Shape(), out)
	}
	down, up := a.weights(x.Graph(), m)
	xd := ConvertDType(x, down.DType())
	h := nn.Dense(xd, down)                       // [..., r]
	h = a.scale(ctx, h, m)                        // [..., r]
	d := nn.Dense(h, ConvertDType(up, h.DType())) // [..., out]
	return ConvertDType(d, x.DType())
}

// Conv2DDelta implements nn.Adapter (LoCon): x [B, in, H, W] → down conv (the layer's kernel,
// stride and padding) → [B, r, H', W'] → 1×1 up conv → [B, out, H', W'], times m·(α/r).
func (a *adapter) Conv2DDelta(ctx *model.Scope, x *Node, cfg nn.Conv2DConfig) *Node {
	m := a.module(ctx)
	if m == nil {
		return nil
	}
	if m.Kind != Conv || m.In != x.Shape().Dim(1) || m.Out != cfg.Out || m.Kernel != cfg.Kernel {
		exceptions.Panicf("lora at %q: module %s (%s, in %d, out %d, kernel %d) does not fit a Conv2D layer with x %s and %+v",
			ctx.Scope(), m.Path, m.Kind, m.In, m.Out, m.Kernel, x.Shape(), cfg)
	}
	down, up := a.weights(x.Graph(), m)
	xd := ConvertDType(x, down.DType())
	h := nn.Convolve2D(xd, down, cfg.Stride, cfg.Padding)              // [B, r, H', W']
	h = a.scale(ctx, h, m)                                             // [B, r, H', W']
	d := nn.Convolve2D(h, ConvertDType(up, h.DType()), 1, [2][2]int{}) // [B, out, H', W']
	return ConvertDType(d, x.DType())
}

// combined adds the updates of several adapters.
type combined []nn.Adapter

// Combine returns one nn.Adapter that sums the updates of several (e.g. the UNet's and the text
// encoders' networks when their layers are built in one graph); nil entries are skipped.
func Combine(adapters ...nn.Adapter) nn.Adapter {
	var c combined
	for _, a := range adapters {
		if a != nil {
			c = append(c, a)
		}
	}
	return c
}

func (c combined) LinearDelta(ctx *model.Scope, x *Node, out int) *Node {
	var sum *Node
	for _, a := range c {
		if d := a.LinearDelta(ctx, x, out); d != nil {
			sum = addOrSet(sum, d)
		}
	}
	return sum
}

func (c combined) Conv2DDelta(ctx *model.Scope, x *Node, cfg nn.Conv2DConfig) *Node {
	var sum *Node
	for _, a := range c {
		if d := a.Conv2DDelta(ctx, x, cfg); d != nil {
			sum = addOrSet(sum, d)
		}
	}
	return sum
}

func addOrSet(sum, d *Node) *Node {
	if sum == nil {
		return d
	}
	return Add(sum, d)
}
