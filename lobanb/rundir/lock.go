package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// LockFile is the run folder's lock: it holds the PID of the process training in the folder.
const LockFile = ".lock"

// ErrLocked is returned (wrapped, with the holder's PID) by Lock when another process holds the
// run folder.
var ErrLocked = errors.New("the run folder is in use by another process")

// held are the run folders this process has locked, by absolute path: a process may take its own
// lock again (a test's several runs, a notebook cell's plan then train); other processes may not.
var (
	heldMu sync.Mutex
	held   = map[string]*heldLock{}
)

type heldLock struct {
	f     *os.File
	count int
}

// Lock takes the run folder's exclusive lock (DIR/.lock, an advisory flock released by the system
// when the process ends, however it ends) for the life of a run, and writes this process's PID
// into it, then removes the temporary files an interrupted run left behind. When another process holds it, Lock fails at once with ErrLocked naming that PID. The
// returned function releases this hold.
func (d Dir) Lock() (release func(), err error) {
	if err := d.Create(); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(d.file(LockFile))
	if err != nil {
		return nil, err
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	if h := held[path]; h != nil {
		h.count++
		return func() { unhold(path) }, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flockExclusive(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is locked by %s (%v); wait for that run to finish, or use another folder",
			ErrLocked, d, holderOf(path), err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	held[path] = &heldLock{f: f, count: 1}
	d.cleanStale() // the first hold: what an interrupted run left half-written goes
	return func() { unhold(path) }, nil
}

// unhold releases one hold of the lock at path; the last one unlocks and closes the file.
func unhold(path string) {
	heldMu.Lock()
	defer heldMu.Unlock()
	h := held[path]
	if h == nil {
		return
	}
	if h.count--; h.count == 0 {
		_ = funlock(h.f)
		_ = h.f.Close()
		delete(held, path)
	}
}

// holderOf names the process recorded in a lock file.
func holderOf(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return "process " + pid
	}
	return "another process"
}
