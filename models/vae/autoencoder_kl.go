// Package vae ports diffusers' AutoencoderKL (models/autoencoders/autoencoder_kl.py and vae.py @
// 58eb52c0), the KL VAE of Stable Diffusion 1.x/2.x and SDXL: images [B, 3, H, W] in [-1, 1] ⇄
// latents [B, 4, H/8, W/8] (the downsampling factor is 2^(len(block_out_channels)-1)).
//
// Weights live under the context's component root with their diffusers keys ("encoder.conv_in.weight"
// ⇄ scope encoder/conv_in, variable "weight"). scaling_factor and shift_factor are not applied here;
// see Config.
package vae

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/loba-dev/loba/models/nn"
)

// AutoencoderKL ports diffusers AutoencoderKL: encoder + quant_conv (1x1, 2·latent → 2·latent) and
// post_quant_conv (1x1, latent → latent) + decoder. It holds the config and the resolved blocks;
// weights live in the context passed to Encode/Decode.
type AutoencoderKL struct {
	Config  *Config
	Encoder *Encoder
	Decoder *Decoder
}

// New validates cfg and resolves every block's sizes, as diffusers' constructor does.
func New(cfg *Config) (*AutoencoderKL, error) {
	if cfg == nil {
		return nil, fmt.Errorf("vae.New: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &AutoencoderKL{Config: cfg, Encoder: newEncoder(cfg), Decoder: newDecoder(cfg)}, nil
}

// Encode computes the posterior's moments, quant_conv(encoder(image)) (diffusers
// `vae.encode(x).latent_dist.parameters`). ctx is the VAE's root scope.
// image: [B, in_channels, H, W] → moments [B, 2·latent_channels, H/f, W/f].
func (m *AutoencoderKL) Encode(ctx *model.Scope, image *Node) *Node {
	h := m.Encoder.Forward(ctx.At("encoder"), image) // [B, 2·latent, h, w]
	if m.Config.UseQuantConv {
		h = nn.Conv2D(ctx.At("quant_conv"), h, 2*m.Config.LatentChannels, 1, 1, 0) // [B, 2·latent, h, w]
	}
	return h
}

// Decode computes decoder(post_quant_conv(latents)) (diffusers `vae.decode(z).sample`). The
// latents are unscaled: divide by scaling_factor (and add shift_factor) before calling it.
// ctx is the VAE's root scope. latents: [B, latent_channels, h, w] → [B, out_channels, h·f, w·f].
func (m *AutoencoderKL) Decode(ctx *model.Scope, latents *Node) *Node {
	if latents.Rank() != 4 || latents.Shape().Dim(1) != m.Config.LatentChannels {
		exceptions.Panicf("vae.Decode: want latents [B, %d, h, w], got %s", m.Config.LatentChannels, latents.Shape())
	}
	z := latents
	if m.Config.UsePostQuantConv {
		z = nn.Conv2D(ctx.At("post_quant_conv"), z, m.Config.LatentChannels, 1, 1, 0) // [B, latent, h, w]
	}
	return m.Decoder.Forward(ctx.At("decoder"), z) // [B, out, h·f, w·f]
}

// DiagonalGaussian ports diffusers DiagonalGaussianDistribution (deterministic=False): mean,
// logvar = moments.chunk(2, dim=1); logvar = clamp(logvar, -30, 20); std = exp(0.5·logvar).
// moments: [B, 2L, h, w] → mean, logvar, std: [B, L, h, w].
func DiagonalGaussian(moments *Node) (mean, logvar, std *Node) {
	if moments.Rank() != 4 || moments.Shape().Dim(1)%2 != 0 {
		exceptions.Panicf("vae.DiagonalGaussian: want moments [B, 2L, h, w], got %s", moments.Shape())
	}
	l := moments.Shape().Dim(1) / 2
	mean = SliceAxis(moments, 1, AxisRange(0, l))     // [B, L, h, w]
	logvar = SliceAxis(moments, 1, AxisRange(l, 2*l)) // [B, L, h, w]
	logvar = ClipScalar(logvar, -30, 20)              // clamp(-30, 20)
	std = Exp(MulScalar(logvar, 0.5))                 // [B, L, h, w]
	return mean, logvar, std
}

// Sample is the reparameterised posterior sample mean + std·noise (what latent_dist.sample()
// computes with that noise). All: [B, L, h, w].
func Sample(mean, std, noise *Node) *Node {
	return Add(mean, Mul(std, noise))
}

// Declare builds a minimal encode and decode (batch 1, smallest spatial size) so that
// weights.Declared lists every weight of the model. ctx is the VAE's root scope.
func (m *AutoencoderKL) Declare(ctx *model.Scope, g *Graph) {
	cfg := m.Config
	f := cfg.DownsampleFactor()
	image := Zeros(g, shapes.Make(dtypes.Float32, 1, cfg.InChannels, f, f))       // [1, in, f, f]
	m.Encode(ctx, image)                                                          // [1, 2·latent, 1, 1]
	latents := Zeros(g, shapes.Make(dtypes.Float32, 1, cfg.LatentChannels, 1, 1)) // [1, latent, 1, 1]
	m.Decode(ctx, latents)                                                        // [1, out, f, f]
}
