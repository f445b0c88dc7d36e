package slider

// A guard against YAML alias bombs ("billion laughs"): yaml.v3 keeps aliases unexpanded in its node tree,
// but the strict decoder (decode.go) follows them, so a small document whose aliases nest or fan out
// would be expanded into millions of values (an 18 KB preset took 10 s and 1.2 GB before this check).
// parseYAML therefore counts, before anything is decoded, how many nodes the aliases would add, and
// rejects the document past aliasBudget.

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// aliasBudget is the most nodes that the aliases of one document may expand to, all aliases together
// (each alias counts the expanded size of its anchor's value, nested aliases included). Real presets
// and the anchors' configs use a few aliases of a few nodes each, far below it; a document without
// aliases is never limited.
const aliasBudget = 100_000

// checkAliasBudget returns an error naming file and the line of the first alias (in document order)
// that takes the expanded size of root's aliases past aliasBudget. The count is memoised per anchor, so
// it costs one pass over the document whatever the aliases would expand to.
func checkAliasBudget(root *yaml.Node, file string) error {
	c := &aliasCounter{sizes: map[*yaml.Node]int{}}
	return c.walk(root, file)
}

// aliasCounter holds the memoised expanded sizes of anchored nodes and the running alias total.
type aliasCounter struct {
	sizes map[*yaml.Node]int // expanded node count per node an alias points at; -1 while in progress
	total int                // nodes added by the aliases seen so far
}

// walk visits the document's own nodes (not following aliases) and adds each alias's expanded size.
func (c *aliasCounter) walk(n *yaml.Node, file string) error {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		size, err := c.size(n.Alias)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, n.Line, err)
		}
		c.total = min(c.total+size, aliasBudget+1)
		if c.total > aliasBudget {
			return fmt.Errorf("%s:%d: YAML aliases expand to more than %d nodes; presets do not need that "+
				"many (an alias bomb?): write the values out or use fewer, smaller aliases",
				file, n.Line, aliasBudget)
		}
		return nil
	}
	for _, child := range n.Content {
		if err := c.walk(child, file); err != nil {
			return err
		}
	}
	return nil
}

// size returns the number of nodes n expands to, aliases followed, saturating just above aliasBudget
// (so that it cannot overflow). An alias cycle, which yaml.v3 should already refuse, is an error.
func (c *aliasCounter) size(n *yaml.Node) (int, error) {
	if n == nil {
		return 1, nil
	}
	if n.Kind == yaml.AliasNode {
		return c.size(n.Alias)
	}
	if s, ok := c.sizes[n]; ok {
		if s < 0 {
			return 0, fmt.Errorf("YAML alias refers to itself")
		}
		return s, nil
	}
	c.sizes[n] = -1
	total := 1
	for _, child := range n.Content {
		s, err := c.size(child)
		if err != nil {
			return 0, err
		}
		total = min(total+s, aliasBudget+1)
	}
	c.sizes[n] = total
	return total, nil
}
