//go:build unix

package configfile

import (
	"os"
	"syscall"
)

// chownLike gives f the owner and group of fi, when the process may.
func chownLike(f *os.File, fi os.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}
