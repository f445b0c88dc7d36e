package slider

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Resolution is an image size [height, width] in pixels. In YAML/JSON it is an integer (square) or a
// list [h, w], as in sd-scripts' prompt TOML.
type Resolution [2]int

// Square returns the resolution s×s.
func Square(s int) Resolution { return Resolution{s, s} }

// H and W return the height and width.
func (r Resolution) H() int { return r[0] }
func (r Resolution) W() int { return r[1] }

// IsZero reports an unset resolution (also used by yaml's omitempty).
func (r Resolution) IsZero() bool { return r == Resolution{} }

// UnmarshalYAML accepts an integer or a two-element list [h, w].
func (r *Resolution) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s int
		if n.ShortTag() != "!!int" || n.Decode(&s) != nil {
			return fmt.Errorf("expected an integer or a list [height, width], got %s", describe(n))
		}
		*r = Resolution{s, s}
		return nil
	case yaml.SequenceNode:
		var hw []int
		if len(n.Content) != 2 || n.Content[0].ShortTag() != "!!int" || n.Content[1].ShortTag() != "!!int" || n.Decode(&hw) != nil {
			return fmt.Errorf("expected a list of two integers [height, width], got %s", describeSeq(n))
		}
		*r = Resolution{hw[0], hw[1]}
		return nil
	}
	return fmt.Errorf("expected an integer or a list [height, width], got %s", describe(n))
}

func describeSeq(n *yaml.Node) string {
	out, err := yaml.Marshal(n)
	if err != nil {
		return "a list"
	}
	return fmt.Sprintf("a list %s", string(trimNL(out)))
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// MarshalYAML writes an integer when square, else a flow list [h, w].
func (r Resolution) MarshalYAML() (any, error) {
	if r[0] == r[1] {
		return r[0], nil
	}
	return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(r[0])},
		{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(r[1])},
	}}, nil
}

// MarshalJSON writes an integer when square, else [h, w].
func (r Resolution) MarshalJSON() ([]byte, error) {
	if r[0] == r[1] {
		return json.Marshal(r[0])
	}
	return json.Marshal([2]int(r))
}

// UnmarshalJSON accepts an integer or [h, w].
func (r *Resolution) UnmarshalJSON(b []byte) error {
	var s int
	if json.Unmarshal(b, &s) == nil {
		*r = Resolution{s, s}
		return nil
	}
	var hw [2]int
	if err := json.Unmarshal(b, &hw); err != nil {
		return fmt.Errorf("resolution: expected an integer or [height, width], got %s", string(b))
	}
	*r = Resolution(hw)
	return nil
}

func (r Resolution) String() string {
	if r[0] == r[1] {
		return fmt.Sprint(r[0])
	}
	return fmt.Sprintf("[%d, %d]", r[0], r[1])
}
