package killpoint

import (
	"sync"
	"testing"
)

// TestParse: NAME and NAME:N, with names that hold ':' themselves.
func TestParse(t *testing.T) {
	for spec, want := range map[string]struct {
		name string
		n    int
	}{
		"step":                      {"step", 1},
		"step:4":                    {"step", 4},
		"write:lora.safetensors":    {"write:lora.safetensors", 1},
		"write:state.safetensors:2": {"write:state.safetensors", 2},
		"":                          {"", 1},
	} {
		t.Setenv(Env, spec)
		once = sync.Once{}
		once.Do(parse)
		if target != want.name || nth != want.n {
			t.Errorf("%q: got (%q, %d), want (%q, %d)", spec, target, nth, want.name, want.n)
		}
	}
	once = sync.Once{}
}
