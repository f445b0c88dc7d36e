//go:build !unix

package hub

import "os"

// tryLock has no advisory locks to take outside unix systems: downloads are not locked there.
func tryLock(*os.File) (bool, error) { return true, nil }

// unlock releases nothing outside unix systems.
func unlock(*os.File) {}
