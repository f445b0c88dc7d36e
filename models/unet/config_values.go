package unet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// OrList is a config value that diffusers accepts as a single value (for every level) or as a list
// with one value per level. JSON null decodes to the null value (IsNull).
type OrList[T int | bool] struct {
	Values []T
	IsList bool
}

// IntOrList is an int or a list of ints: attention_head_dim, num_attention_heads,
// cross_attention_dim, layers_per_block, sample_size.
type IntOrList = OrList[int]

// BoolOrList is a bool for every level or one per level (only_cross_attention).
type BoolOrList = OrList[bool]

// Int is the scalar IntOrList n.
func Int(n int) IntOrList { return IntOrList{Values: []int{n}} }

// IntList is the list IntOrList.
func IntList(vals ...int) IntOrList { return IntOrList{Values: vals, IsList: true} }

// IsNull reports whether the value is JSON null (or unset).
func (v OrList[T]) IsNull() bool { return !v.IsList && len(v.Values) == 0 }

// At is the value for level i: the scalar, or the i-th entry of the list.
func (v OrList[T]) At(i int) T {
	if !v.IsList {
		return v.Values[0]
	}
	return v.Values[i]
}

// Reversed is the per-level values of n levels, reversed (what up blocks use).
func (v OrList[T]) Reversed(n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v.At(n - 1 - i)
	}
	return out
}

func (v OrList[T]) String() string {
	b, _ := v.MarshalJSON()
	return string(b)
}

// MarshalJSON writes null, a value or a list, as read.
func (v OrList[T]) MarshalJSON() ([]byte, error) {
	if v.IsNull() {
		return []byte("null"), nil
	}
	if !v.IsList {
		return json.Marshal(v.Values[0])
	}
	return json.Marshal(v.Values)
}

// UnmarshalJSON reads null, a value or a list of values.
func (v *OrList[T]) UnmarshalJSON(data []byte) error {
	one, many := "an integer", "integers"
	if _, ok := any(*new(T)).(bool); ok {
		one, many = "a boolean", "booleans"
	}
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*v = OrList[T]{}
	case len(data) > 0 && data[0] == '[':
		var vals []T
		if err := json.Unmarshal(data, &vals); err != nil {
			return fmt.Errorf("want a list of %s, got %s", many, data)
		}
		*v = OrList[T]{Values: vals, IsList: true}
	default:
		var x T
		if err := json.Unmarshal(data, &x); err != nil {
			return fmt.Errorf("want %s or a list of %s, got %s", one, many, data)
		}
		*v = OrList[T]{Values: []T{x}}
	}
	return nil
}

// LayerCounts is transformer_layers_per_block (or reverse_transformer_layers_per_block): the number of
// BasicTransformerBlocks in each Transformer2DModel. It is an int (every level), a list with one
// entry per level, where an entry is an int (every attention of the level) or a list with one count
// per attention of the level (asymmetric UNets, which then need reverse_transformer_layers_per_block).
type LayerCounts struct {
	Levels []IntOrList
	List   bool
}

// IsNull reports whether the value is JSON null (or unset).
func (l LayerCounts) IsNull() bool { return !l.List && len(l.Levels) == 0 }

// Nested reports whether some level gives per-attention counts.
func (l LayerCounts) Nested() bool {
	for _, e := range l.Levels {
		if e.IsList {
			return true
		}
	}
	return false
}

// ForLevel is the transformer depth of each of the numAttn attentions of level i.
func (l LayerCounts) ForLevel(i, numAttn int) []int {
	e := l.Levels[0]
	if l.List {
		e = l.Levels[i]
	}
	out := make([]int, numAttn)
	for j := range out {
		if e.IsList {
			out[j] = e.Values[j]
		} else {
			out[j] = e.Values[0]
		}
	}
	return out
}

// Reversed is the level-reversed value over n levels (what up blocks use when
// reverse_transformer_layers_per_block is null).
func (l LayerCounts) Reversed(n int) LayerCounts {
	if !l.List {
		return l
	}
	out := LayerCounts{List: true, Levels: make([]IntOrList, n)}
	for i := range out.Levels {
		out.Levels[i] = l.Levels[n-1-i]
	}
	return out
}

func (l LayerCounts) String() string {
	b, _ := l.MarshalJSON()
	return string(b)
}

// validate checks the shape of the value: a scalar or n levels, every count >= 1, and per-attention
// lists of length attnPerLevel(i).
func (l LayerCounts) validate(key string, n int, attnPerLevel func(i int) int) []error {
	var errs []error
	if l.IsNull() {
		return []error{fmt.Errorf("%s = null: want a number or one entry per level", key)}
	}
	if l.List && len(l.Levels) != n {
		errs = append(errs, fmt.Errorf("%s = %s has %d entries, down_block_types %d: give a single number or one per level", key, l, len(l.Levels), n))
		return errs
	}
	for i, e := range l.Levels {
		for _, v := range e.Values {
			if v < 1 {
				errs = append(errs, fmt.Errorf("%s = %s: every count must be >= 1", key, l))
				return errs
			}
		}
		if e.IsList && attnPerLevel != nil && l.List {
			if want := attnPerLevel(i); len(e.Values) != want {
				errs = append(errs, fmt.Errorf("%s[%d] = %s has %d entries, want %d (one per attention of the level)", key, i, e, len(e.Values), want))
			}
		}
	}
	return errs
}

// MarshalJSON writes null, a number or a (nested) list, as read.
func (l LayerCounts) MarshalJSON() ([]byte, error) {
	if l.IsNull() {
		return []byte("null"), nil
	}
	if !l.List {
		return l.Levels[0].MarshalJSON()
	}
	parts := make([]string, len(l.Levels))
	for i, e := range l.Levels {
		b, _ := e.MarshalJSON()
		parts[i] = string(b)
	}
	return []byte("[" + strings.Join(parts, ", ") + "]"), nil
}

// UnmarshalJSON reads null, a number, or a list whose entries are numbers or lists of numbers.
func (l *LayerCounts) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*l = LayerCounts{}
	case len(data) > 0 && data[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return fmt.Errorf("want a list, got %s", data)
		}
		out := LayerCounts{List: true, Levels: make([]IntOrList, len(raw))}
		for i, r := range raw {
			if err := out.Levels[i].UnmarshalJSON(r); err != nil {
				return err
			}
			if out.Levels[i].IsNull() {
				return fmt.Errorf("entry %d is null", i)
			}
		}
		*l = out
	default:
		var e IntOrList
		if err := e.UnmarshalJSON(data); err != nil {
			return err
		}
		*l = LayerCounts{Levels: []IntOrList{e}}
	}
	return nil
}
