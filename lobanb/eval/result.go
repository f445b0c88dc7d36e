package eval

import "encoding/json"

// Report is one evaluation's outcome: exactly one of Slider (eval.kind: slider) and Erase
// (eval.kind: erase) is set.
type Report struct {
	Slider *SliderReport
	Erase  *EraseReport
}

// Table is the report's plain-text table.
func (r *Report) Table() string {
	switch {
	case r == nil:
		return ""
	case r.Slider != nil:
		return r.Slider.Table()
	case r.Erase != nil:
		return r.Erase.Table()
	}
	return ""
}

// value is the set report (*SliderReport or *EraseReport).
func (r *Report) value() any {
	if r != nil && r.Slider != nil {
		return r.Slider
	}
	if r != nil && r.Erase != nil {
		return r.Erase
	}
	return nil
}

// MarshalJSON writes the set report alone: the form of eval.json and of `loba eval`'s output.
func (r *Report) MarshalJSON() ([]byte, error) { return json.Marshal(r.value()) }
