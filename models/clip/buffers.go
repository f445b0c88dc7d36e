package clip

import (
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
)

// PositionIDsKey is the position_ids buffer transformers saved with CLIP text models before 4.31.
const PositionIDsKey = "text_model.embeddings.position_ids"

// SavedBuffers lists the non-parameter tensors a checkpoint written by the config's
// transformers_version holds: before 4.31 the `position_ids` buffer ([1, max_position_embeddings],
// int64) was persistent, so SD1.5's text_encoder files carry it; from 4.31 on it is not saved (SDXL).
// The model never reads it (IgnoredKey): it is listed so that a key listing matches the files.
func (c *Config) SavedBuffers() map[string]shapes.Shape {
	if !versionBefore(c.TransformersVersion, 4, 31) {
		return nil
	}
	return map[string]shapes.Shape{PositionIDsKey: shapes.Make(dtypes.Int64, 1, c.MaxPositionEmbeddings)}
}

// versionBefore tells whether a version string such as "4.22.0.dev0" is older than major.minor.
// An empty or unparsable version counts as current (not before).
func versionBefore(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || (ma == major && mi < minor)
}
