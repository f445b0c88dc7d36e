package lora

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomlx/compute/shapes"

	"github.com/loba-dev/loba/models/singlefile"
	"github.com/loba-dev/loba/models/unet"
)

// ldmPaths maps every UNet module path (diffusers) to its LDM/SAI module path, through the
// single-file tables of models/singlefile (the rows "model.diffusion_model.<ldm>.weight" →
// "<diffusers>.weight"). The table needs the UNet's block structure, which is read back from the
// declared keys (levels, resnets and attentions per block, transformer depth, channels, SDXL add
// embedding), so any UNet2DConditionModel config the tables support is mapped.
func ldmPaths(declared map[string]shapes.Shape) (map[string]string, error) {
	u, err := unetLayoutOf(declared)
	if err != nil {
		return nil, err
	}
	const prefix = "model.diffusion_model."
	out := map[string]string{}
	err = singlefile.UNetRows(u, prefix, func(from, to string, op singlefile.Op) {
		to, ok := strings.CutSuffix(to, ".weight")
		if !ok || op != singlefile.OpCopy {
			return
		}
		out[to] = strings.TrimSuffix(strings.TrimPrefix(from, prefix), ".weight")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unetLayoutOf reads the block structure of a diffusers UNet2DConditionModel from its weight keys,
// as the unet.Config the single-file tables are generated from (the keys it does not read keep
// DefaultConfig's values).
func unetLayoutOf(declared map[string]shapes.Shape) (*unet.Config, error) {
	u := unet.DefaultConfig()
	u.BlockOutChannels, u.DownBlockTypes, u.UpBlockTypes = nil, nil, nil
	layers, depths := []int{}, []unet.IntOrList{}
	// count[block] = number of distinct indices after the prefix, e.g. "down_blocks.0.resnets." → 2.
	count := func(prefix string) int {
		n := 0
		for key := range declared {
			rest, ok := strings.CutPrefix(key, prefix)
			if !ok {
				continue
			}
			i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
			if err == nil && i+1 > n {
				n = i + 1
			}
		}
		return n
	}
	levels := count("down_blocks.")
	if levels == 0 || count("up_blocks.") != levels {
		return u, fmt.Errorf("lora: not a UNet2DConditionModel layout (%d down blocks, %d up blocks)", levels, count("up_blocks."))
	}
	depth := func(prefix string) int { return count(prefix + "transformer_blocks.") }
	for b := range levels {
		conv1, ok := declared[fmt.Sprintf("down_blocks.%d.resnets.0.conv1.weight", b)]
		if !ok || conv1.Rank() != 4 {
			return u, fmt.Errorf("lora: UNet down_blocks.%d has no resnets.0.conv1", b)
		}
		u.BlockOutChannels = append(u.BlockOutChannels, conv1.Dimensions[0])
		layers = append(layers, count(fmt.Sprintf("down_blocks.%d.resnets.", b)))
		down, up := "DownBlock2D", "UpBlock2D"
		if count(fmt.Sprintf("down_blocks.%d.attentions.", b)) > 0 {
			down = "CrossAttnDownBlock2D"
		}
		if count(fmt.Sprintf("up_blocks.%d.attentions.", b)) > 0 {
			up = "CrossAttnUpBlock2D"
		}
		u.DownBlockTypes = append(u.DownBlockTypes, down)
		u.UpBlockTypes = append(u.UpBlockTypes, up)
		// Transformer depth of level b: its down attentions, else the mirrored up block's, else (last
		// level) the mid block's.
		d := depth(fmt.Sprintf("down_blocks.%d.attentions.0.", b))
		if d == 0 {
			d = depth(fmt.Sprintf("up_blocks.%d.attentions.0.", levels-1-b))
		}
		if d == 0 && b == levels-1 {
			d = depth("mid_block.attentions.0.")
		}
		depths = append(depths, unet.Int(max(d, 1)))
	}
	u.LayersPerBlock = unet.IntList(layers...)
	u.TransformerLayersPerBlock = unet.LayerCounts{List: true, Levels: depths}
	if _, ok := declared["add_embedding.linear_1.weight"]; ok {
		u.AdditionEmbedType = unet.SDXLBase().AdditionEmbedType // "text_time"
	}
	return u, nil
}
