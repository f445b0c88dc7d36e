// Package nn holds the thin layers every LOBA model is built from, in PyTorch layouts:
// Linear ([out, in] weight), Conv2D (OIHW kernel, NCHW activations), GroupNorm, LayerNorm,
// attention, GEGLU and the sinusoidal timestep embedding.
//
// Every layer takes a *context.Context already scoped to its own module path (diffusers' attribute
// name, e.g. ctx.In("down_blocks").In("0").In("resnets").In("1").In("conv1")) and declares its
// variables there under the checkpoint's names ("weight", "bias"). So a weight's scope path is its
// diffusers key with "." replaced by "/": loading and saving need no rename and no transpose.
//
// Graph-building functions panic (exceptions.Panicf) on bad shapes; callers at the API boundary
// recover them with exceptions.TryCatch.
//
// This package is also the single place where adapters (LoRA/LoCon) hook into Linear and Conv2D,
// and where cross-attention maps are captured (CaptureCrossAttention, ConceptMask).
package nn

// Every model builds on this package, so importing gradfix here installs the fixed gradients
// (DotGeneral/Dot as gemms, Rsqrt, ConvGeneral and Slice without Reverse/Pad) everywhere.
import _ "github.com/loba-dev/loba/internal/gradfix"
