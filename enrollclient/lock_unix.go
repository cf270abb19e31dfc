//go:build unix

package enrollclient

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

func lockFileExclusive(path string) (unlockFunc, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s is locked)", ErrBusy, path)
		}
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// lockIsExclusive: with the flock held no other process writes in Dir, so
// the temporaries found there are stale (removeStaleTemps).
const lockIsExclusive = true
