//go:build unix

package rundir

import (
	"os"
	"syscall"
)

// flockExclusive takes f's exclusive advisory lock without waiting.
func flockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// funlock releases f's advisory lock.
func funlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
