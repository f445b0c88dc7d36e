// Package killpoint lets the crash tests kill a real LOBA process at a named point: in the middle of
// a checkpoint, of the LoRA write, of the evaluation. With LOBA_KILLPOINT=NAME[:N] in the environment
// the process sends itself SIGKILL the N-th time (default 1) it reaches Here(NAME) — no deferred
// function, no signal handler and no buffered write runs, as when the machine loses power or the
// kernel's OOM killer strikes. Without the variable Here is a map lookup that does nothing.
package killpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// Env is the environment variable naming the point: NAME or NAME:N.
const Env = "LOBA_KILLPOINT"

var (
	once   sync.Once
	target string
	nth    int
	mu     sync.Mutex
	hits   int
)

func parse() {
	spec := os.Getenv(Env)
	target, nth = spec, 1
	if i := strings.LastIndexByte(spec, ':'); i >= 0 { // NAME:N; a NAME may hold ':' itself ("write:lora.safetensors")
		if v, err := strconv.Atoi(spec[i+1:]); err == nil && v > 0 {
			target, nth = spec[:i], v
		}
	}
}

// Here kills the process when it is the N-th arrival at the point LOBA_KILLPOINT names.
func Here(name string) {
	once.Do(parse)
	if target == "" || name != target {
		return
	}
	mu.Lock()
	hits++
	hit := hits == nth
	mu.Unlock()
	if hit {
		kill()
	}
}
