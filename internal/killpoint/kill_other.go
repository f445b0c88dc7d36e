//go:build !unix

package killpoint

import "os"

// kill ends the process at once, running nothing deferred.
func kill() { os.Exit(137) }
