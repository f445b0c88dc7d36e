package sd

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"

	"github.com/loba-dev/loba/models/lora"
	"github.com/loba-dev/loba/models/nn"
)

// UseLoRA loads a kohya LoRA file (diffusers or SAI names) onto the pipeline's UNet and installs it
// as the sampling adapter, so SampleRequest.Strengths sweep its strength (0 = the base model). It
// returns the network; its weights live in Ctx under "lora/unet/...". Errors name the file and
// every key that does not fit the model.
func (p *Pipeline) UseLoRA(path string) (*lora.Network, error) {
	if p.UNet == nil {
		return nil, fmt.Errorf("sd.UseLoRA: the pipeline is closed")
	}
	decl, err := p.UNet.Declared()
	if err != nil {
		return nil, err
	}
	loaded, err := lora.LoadKohya(path, lora.Base{Component: "unet", Declared: decl})
	if err != nil {
		return nil, err
	}
	net := loaded.Network("unet")
	if net == nil {
		return nil, fmt.Errorf("sd.UseLoRA: %s holds no UNet module (text-encoder LoRAs are not applied yet)", path)
	}
	if err := net.SetWeights(p.Ctx, loaded.Weights["unet"]); err != nil {
		return nil, fmt.Errorf("sd.UseLoRA %s: %w", path, err)
	}
	p.SetAdapter(func(m *Node) nn.Adapter { return net.Adapter(p.Ctx, "/"+ScopeUNet, m) })
	return net, nil
}
