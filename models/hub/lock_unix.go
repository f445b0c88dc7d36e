//go:build unix

package hub

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes f's exclusive advisory lock (flock, as Python's filelock does) without waiting;
// false when another open file holds it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// unlock releases f's advisory lock.
func unlock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
