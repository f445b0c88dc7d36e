package nn

import (
	"sync"

	. "github.com/gomlx/gomlx/core/graph"
)

// graphScoped is a setting installed per graph while it is built (the adapter, the memory options,
// the cross-attention capture): layers read the value of the graph they are built in. The zero
// value of T means "none".
type graphScoped[T comparable] struct {
	mu     sync.Mutex
	values map[GraphId]T
}

// use installs v for g (the zero value removes it) and returns the value installed before.
func (s *graphScoped[T]) use(g *Graph, v T) (previous T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[GraphId]T{}
	}
	id := g.GraphId()
	previous = s.values[id]
	var zero T
	if v == zero {
		delete(s.values, id)
	} else {
		s.values[id] = v
	}
	return previous
}

// of returns the value installed for g (the zero value when none).
func (s *graphScoped[T]) of(g *Graph) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[g.GraphId()]
}
