package sd

import (
	"fmt"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
	"github.com/loba-dev/loba/models/safetensors"
)

// UseLoRA loads a kohya LoRA file (diffusers or SAI names for the UNet; lora_te_ for SD1.x's text
// encoder, lora_te1_ / lora_te2_ for SDXL's two) onto the pipeline's UNet and loaded text encoders,
// and installs it for sampling, so SampleRequest.Strengths sweep its strength (0 = the base model):
// the UNet modules as the UNet adapter (SetAdapter), the text-encoder modules as the text adapter
// (SetTextAdapter), each set to nil when the file has no module of it. A file may hold UNet
// modules, text-encoder modules or both. The weights live in Ctx under "lora/<component>/...".
//
// It returns the UNet network (nil when the file has no UNet module). Errors name the file and
// what does not fit: every key that matches no module of the model, modules that do not fit their
// layer, a file with no module at all, and a file with text-encoder modules when the text encoders
// were freed (FreeTextEncoders) or not loaded (SkipTextEncoders).
func (p *Pipeline) UseLoRA(path string) (*lora.Network, error) {
	if p.UNet == nil {
		return nil, fmt.Errorf("sd.UseLoRA %s: the pipeline is closed", path)
	}
	bases, err := p.LoRABases()
	if err != nil {
		return nil, fmt.Errorf("sd.UseLoRA %s: %w", path, err)
	}
	if len(p.TextEncoders) == 0 {
		if err := checkNoTextEncoderKeys(path); err != nil {
			return nil, err
		}
	}
	loaded, err := lora.LoadKohya(path, bases...)
	if err != nil {
		return nil, fmt.Errorf("sd.UseLoRA: %w", err)
	}
	if err := loaded.SetWeights(p.Ctx); err != nil {
		return nil, fmt.Errorf("sd.UseLoRA: %w", err)
	}
	unetNet := loaded.Network(lora.UNet)
	var unetAdapter AdapterFactory
	if unetNet != nil {
		unetAdapter = func(m *Node) nn.Adapter { return unetNet.Adapter(p.Ctx, "/"+ScopeUNet, m) }
	}
	var textNets []*lora.Network
	for _, scope := range textEncoderScopes[:len(p.TextEncoders)] {
		if n := loaded.Network(scope); n != nil {
			textNets = append(textNets, n)
		}
	}
	p.SetAdapter(unetAdapter)
	p.SetTextAdapter(p.TextAdapterOf(textNets))
	return unetNet, nil
}

// TextAdapterOf is the adapter factory of text-encoder networks whose weights live in Ctx (each
// network applies to the encoder named by its component, "text_encoder" or "text_encoder_2"), for
// SetTextAdapter or a graph of the caller's; nil when nets is empty.
func (p *Pipeline) TextAdapterOf(nets []*lora.Network) AdapterFactory {
	if len(nets) == 0 {
		return nil
	}
	return func(m *Node) nn.Adapter {
		as := make([]nn.Adapter, len(nets))
		for i, n := range nets {
			as[i] = n.Adapter(p.Ctx, "/"+n.Component, m) // the encoders' scopes are their component names
		}
		return lora.Combine(as...)
	}
}

// LoRABases are the components a kohya LoRA file may adapt on this pipeline, for lora.LoadKohya:
// the UNet and each text encoder it holds (none once freed), each with its declared weights.
func (p *Pipeline) LoRABases() ([]lora.Base, error) {
	decl, err := p.UNet.Declared()
	if err != nil {
		return nil, err
	}
	bases := []lora.Base{{Component: lora.UNet, Declared: decl}}
	for i, te := range p.TextEncoders {
		teDecl, err := te.Declared()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", textEncoderScopes[i], err)
		}
		bases = append(bases, lora.Base{Component: textEncoderScopes[i], Declared: teDecl})
	}
	return bases, nil
}

// checkNoTextEncoderKeys fails when the LoRA file at path holds text-encoder modules (lora_te_,
// lora_te1_, lora_te2_ names): a pipeline without text encoders cannot apply them.
func checkNoTextEncoderKeys(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("sd.UseLoRA: %w", err)
	}
	defer f.Close()
	var te []string
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "lora_te") {
			te = append(te, name)
		}
	}
	if len(te) == 0 {
		return nil
	}
	return fmt.Errorf("sd.UseLoRA %s: the file holds %d text-encoder tensors (e.g. %s) but the pipeline's text encoders "+
		"were freed (FreeTextEncoders) or not loaded (SkipTextEncoders): load the pipeline with its text encoders to apply them",
		path, len(te), te[0])
}
