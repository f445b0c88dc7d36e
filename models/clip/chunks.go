package clip

import (
	"github.com/gomlx/exceptions"
	. "github.com/gomlx/gomlx/core/graph"
)

// JoinChunks concatenates the per-chunk hidden states of long prompts along the sequence axis, as
// A1111 / ComfyUI do: the encoder ran on the EncodeChunks windows of each prompt stacked in the
// batch (prompt-major: prompt 0's chunks, then prompt 1's, ...), every prompt with the same number
// of chunks. h: [prompts·chunks, S, D] → [prompts, chunks·S, D].
func JoinChunks(h *Node, chunks int) *Node {
	if h.Rank() != 3 || chunks <= 0 || h.Shape().Dim(0)%chunks != 0 {
		exceptions.Panicf("clip.JoinChunks: want [prompts·%d, S, D] hidden states, got %s", chunks, h.Shape())
	}
	b, s, d := h.Shape().Dim(0), h.Shape().Dim(1), h.Shape().Dim(2)
	return Reshape(h, b/chunks, chunks*s, d) // [prompts, chunks·S, D]
}

// FirstChunk picks each prompt's first chunk of a per-chunk tensor (e.g. SDXL's pooled text_embeds,
// which long-prompt tools take from the first window). x: [prompts·chunks, ...] → [prompts, ...].
func FirstChunk(x *Node, chunks int) *Node {
	if x.Rank() < 1 || chunks <= 0 || x.Shape().Dim(0)%chunks != 0 {
		exceptions.Panicf("clip.FirstChunk: want [prompts·%d, ...], got %s", chunks, x.Shape())
	}
	dims := append([]int{x.Shape().Dim(0) / chunks, chunks}, x.Shape().Dimensions[1:]...)
	return Squeeze(SliceAxis(Reshape(x, dims...), 1, AxisRange(0, 1)), 1)
}
