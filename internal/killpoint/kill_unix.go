//go:build unix

package killpoint

import (
	"syscall"
	"time"
)

// kill sends this process SIGKILL and waits for it to land.
func kill() {
	_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	for {
		time.Sleep(time.Second)
	}
}
