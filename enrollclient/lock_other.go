//go:build !unix

package enrollclient

import "os"

// lockFileExclusive only creates the lock file on systems without flock.
func lockFileExclusive(path string) (unlockFunc, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockIsExclusive: the lock file does not keep another process out, so a
// temporary found in Dir may be another writer's: none is removed.
const lockIsExclusive = false
