// Package warm imports the heavy dependencies so that `go build ./...` fills the build cache once.
package warm

import (
	_ "github.com/gomlx/exceptions"
	_ "github.com/gomlx/go-huggingface/hub"
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/pkg/core/graph"
	_ "github.com/gomlx/gomlx/pkg/ml/context"
	_ "github.com/stretchr/testify/require"
	_ "github.com/x448/float16"
)
