package unet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// IntOrList is a config value that diffusers accepts as a single int (for every level) or as a list
// with one int per level: attention_head_dim, num_attention_heads, cross_attention_dim,
// layers_per_block, sample_size. JSON null decodes to the null value (IsNull).
type IntOrList struct {
	Values []int
	IsList bool
}

// Int is the scalar IntOrList n.
func Int(n int) IntOrList { return IntOrList{Values: []int{n}} }

// IntList is the list IntOrList.
func IntList(vals ...int) IntOrList { return IntOrList{Values: vals, IsList: true} }

// IsNull reports whether the value is JSON null (or unset).
func (v IntOrList) IsNull() bool { return !v.IsList && len(v.Values) == 0 }

// At is the value for level i: the scalar, or the i-th entry of the list.
func (v IntOrList) At(i int) int {
	if !v.IsList {
		return v.Values[0]
	}
	return v.Values[i]
}

// Reversed is the per-level values of n levels, reversed (what up blocks use).
func (v IntOrList) Reversed(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v.At(n - 1 - i)
	}
	return out
}

func (v IntOrList) String() string {
	b, _ := v.MarshalJSON()
	return string(b)
}

// MarshalJSON writes null, a number or a list, as read.
func (v IntOrList) MarshalJSON() ([]byte, error) {
	if v.IsNull() {
		return []byte("null"), nil
	}
	if !v.IsList {
		return json.Marshal(v.Values[0])
	}
	return json.Marshal(v.Values)
}

// UnmarshalJSON reads null, a number or a list of numbers.
func (v *IntOrList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*v = IntOrList{}
	case len(data) > 0 && data[0] == '[':
		var vals []int
		if err := json.Unmarshal(data, &vals); err != nil {
			return fmt.Errorf("want a list of integers, got %s", data)
		}
		*v = IntOrList{Values: vals, IsList: true}
	default:
		var n int
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("want an integer or a list of integers, got %s", data)
		}
		*v = Int(n)
	}
	return nil
}

// BoolOrList is a bool for every level or one per level (only_cross_attention).
type BoolOrList struct {
	Values []bool
	IsList bool
}

func (v BoolOrList) String() string {
	b, _ := v.MarshalJSON()
	return string(b)
}

// MarshalJSON writes null, a bool or a list, as read.
func (v BoolOrList) MarshalJSON() ([]byte, error) {
	if !v.IsList && len(v.Values) == 0 {
		return []byte("null"), nil
	}
	if !v.IsList {
		return json.Marshal(v.Values[0])
	}
	return json.Marshal(v.Values)
}

// UnmarshalJSON reads null, a bool or a list of bools.
func (v *BoolOrList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*v = BoolOrList{}
	case len(data) > 0 && data[0] == '[':
		var vals []bool
		if err := json.Unmarshal(data, &vals); err != nil {
			return fmt.Errorf("want a list of booleans, got %s", data)
		}
		*v = BoolOrList{Values: vals, IsList: true}
	default:
		var b bool
		if err := json.Unmarshal(data, &b); err != nil {
			return fmt.Errorf("want a boolean or a list of booleans, got %s", data)
		}
		*v = BoolOrList{Values: []bool{b}}
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
