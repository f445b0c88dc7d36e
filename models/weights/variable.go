package weights

import (
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// SetVariable sets (or creates) the variable of a checkpoint key under ctx: the key
// "down_blocks.0.resnets.0.conv1.weight" is variable "weight" in scope down_blocks/0/resnets/0/conv1
// (KeyToScope). The variable is marked trainable or frozen as asked.
func SetVariable(ctx *model.Scope, key string, t *tensors.Tensor, trainable bool) error {
	return exceptions.TryCatch[error](func() {
		scope, name := KeyToScope(key)
		c := ctx
		for _, s := range scope {
			c = c.At("%s", s)
		}
		v := c.GetVariable(name)
		if v == nil {
			v = c.VariableWithValue(name, t)
		} else if err := v.SetValue(t); err != nil {
			exceptions.Panicf("setting %s: %v", key, err)
		}
		v.SetTrainable(trainable)
	})
}

// setVariable is SetVariable, under the name LoadFiles and InitFromScratch call it by.
func setVariable(ctx *model.Scope, key string, t *tensors.Tensor, trainable bool) error {
	return SetVariable(ctx, key, t, trainable)
}
