//go:build !unix

package rundir

import "os"

// flockExclusive has no advisory locks to take outside unix systems: the folder is not locked there.
func flockExclusive(*os.File) error { return nil }

// funlock releases nothing outside unix systems.
func funlock(*os.File) error { return nil }
