package configfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// DefaultBackups is the number of backups kept when SaveOptions.Backups is 0.
const DefaultBackups = 5

// DefaultMode is the mode of a file that did not exist before.
const DefaultMode os.FileMode = 0o640

// SaveOptions tune WriteFileAtomic and Save.
type SaveOptions struct {
	// Backups is how many previous versions to keep, as path.~1~ (newest)
	// to path.~N~. 0 means DefaultBackups; a negative number keeps none.
	Backups int
	// Mode is the permission of a file that does not exist yet (0 means
	// DefaultMode). An existing file keeps its own mode (and, when the
	// process may, its owner and group).
	Mode os.FileMode
	// BeforeReplace, when set, is called once the new version is written
	// and synced, just before the backups rotate and the new version
	// replaces path, with its FileInfo (the file keeps its identity, size
	// and modification time when renamed onto path). An error aborts the
	// write, leaving path and its backups as they were, and is returned.
	// It lets a caller check, as late as possible, that nobody else
	// replaced path since the caller read it, and know which version it
	// wrote whatever replaces path afterwards.
	BeforeReplace func(written os.FileInfo) error
	// Replaces, when set, is the version of path the write is meant to
	// replace, as os.Stat returned it. Where two files can be swapped
	// atomically (Linux, renameat2 RENAME_EXCHANGE) the new version is
	// swapped in and the file it displaced is checked. If that is another
	// version (a file renamed onto path after BeforeReplace ran, as an
	// editor saves, or the file written in place since it was read), the
	// swap is undone, that version stays, and ErrReplaced is returned.
	// Elsewhere the new version is renamed onto path whatever is there.
	Replaces os.FileInfo
}

// ErrReplaced is returned when the file a write was to replace
// (SaveOptions.Replaces) had itself been replaced meanwhile.
var ErrReplaced = errors.New("configfile: the file was replaced by another version while the new one was written")

// Save writes f.Bytes() to path as WriteFileAtomic does, streaming the
// source and the edits to the file without building Bytes() in memory.
func (f *File) Save(path string, opts SaveOptions) error {
	return writeAtomic(path, opts, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// BackupName returns the name of the n-th backup of path (1 is the newest).
func BackupName(path string, n int) string {
	return path + ".~" + strconv.Itoa(n) + "~"
}

// WriteFileAtomic replaces the file at path with data so that a reader (or
// a crash) sees either the old or the new file, never a mix:
//
//  1. data is written to a temporary file in the same directory (named
//     ".NAME.tmp-*"), which gets the mode of the file it replaces and is
//     synced to disk;
//  2. the backups rotate: path.~N~ is dropped, path.~i~ becomes
//     path.~i+1~, and the current file is hard-linked (or, where links are
//     not possible, copied) to path.~1~, so path never stops existing;
//  3. the temporary file is renamed onto path and the directory is synced.
//
// opts.BeforeReplace, if set, runs between steps 1 and 2. With
// opts.Replaces, step 3 is an atomic exchange where the system has one
// (see SaveOptions.Replaces).
//
// If path is a symbolic link, the file it points to is replaced (or
// created, if the link is dangling); the link itself stays. On error
// the temporary file is removed and path is unchanged. Concurrent writers
// of the same path must be serialized by the caller.
func WriteFileAtomic(path string, data []byte, opts SaveOptions) error {
	return writeAtomic(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeAtomic(path string, opts SaveOptions, write func(io.Writer) error) (err error) {
	if path, err = linkTarget(path); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	backups := opts.Backups
	if backups == 0 {
		backups = DefaultBackups
	}
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = DefaultMode
	}
	fi, statErr := os.Stat(path)
	exists := statErr == nil
	switch {
	case exists && !fi.Mode().IsRegular():
		return fmt.Errorf("configfile: %s is not a regular file", path)
	case exists:
		mode = fi.Mode().Perm()
	case !errors.Is(statErr, fs.ErrNotExist):
		return statErr
	}

	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ours := true // tmpName names the new version (after a swap it may not)
	defer func() {
		if err != nil {
			tmp.Close()
			if ours {
				os.Remove(tmpName)
			}
		}
	}()
	if exists {
		chownLike(tmp, fi)
	}
	if err = tmp.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		return err
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = fsync(tmp); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	var written os.FileInfo
	if opts.BeforeReplace != nil || opts.Replaces != nil {
		if written, err = os.Stat(tmpName); err != nil {
			return err
		}
	}
	if opts.BeforeReplace != nil {
		if err = opts.BeforeReplace(written); err != nil {
			return err
		}
	}
	if exists && backups > 0 {
		if err = rotateBackups(path, backups, mode); err != nil {
			return fmt.Errorf("configfile: keeping a backup of %s: %w", path, err)
		}
		defer func() {
			if err != nil { // path stays: its backup must not share its inode
				unlinkBackup(path, BackupName(path, 1), mode)
			}
		}()
	}
	if exists && opts.Replaces != nil {
		swapped, err := exchange(tmpName, path)
		if err != nil {
			return err
		}
		if swapped {
			ours = false
			return swappedIn(tmpName, path, dir, written, opts.Replaces)
		}
	}
	if err = os.Rename(tmpName, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// swappedIn finishes a write whose new version (written) was swapped onto
// path: tmpName now names the version it displaced. That is the one the
// write was to replace (it is dropped: path.~1~ keeps it), or another one,
// which is swapped back (ErrReplaced).
func swappedIn(tmpName, path, dir string, written, replaces os.FileInfo) error {
	// the same file, not written since (an editor that writes in place
	// keeps the file and changes its time and size)
	displaced, err := os.Lstat(tmpName)
	if err == nil && os.SameFile(displaced, replaces) && displaced.ModTime().Equal(replaces.ModTime()) && displaced.Size() == replaces.Size() {
		os.Remove(tmpName)
		return syncDir(dir)
	}
	if _, err := exchange(tmpName, path); err != nil {
		return fmt.Errorf("configfile: %s was replaced while it was written, and putting that version back failed (it is %s): %w", path, tmpName, err)
	}
	// tmpName is the new version again, unless yet another version was
	// renamed onto path in between: that latest one then takes path
	if back, err := os.Lstat(tmpName); err == nil && os.SameFile(back, written) {
		os.Remove(tmpName)
	} else if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("configfile: %s was replaced twice while it was written; the latest version is %s: %w", path, tmpName, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return ErrReplaced
}

// maxLinks bounds a chain of symbolic links, as the kernel does.
const maxLinks = 40

// linkTarget returns the file that writing path replaces: path, or when
// path is a symbolic link the file at the end of its chain of links. That
// file may not exist yet (a dangling link): it is then created where the
// link points, and the link stays a link.
func linkTarget(path string) (string, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real, nil
	}
	p := path
	for range maxLinks {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return p, nil // a new file, or the missing end of a chain
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink == 0:
			return p, nil
		}
		dest, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			// relative to the link's directory, as written (not
			// cleaned: ".." after a symlinked directory is the kernel's)
			dir, _ := filepath.Split(p)
			dest = dir + dest
		}
		p = dest
	}
	return "", fmt.Errorf("configfile: %s: too many levels of symbolic links", path)
}

// rotateBackups shifts path.~i~ to path.~i+1~ (dropping path.~n~) and makes
// the current file path.~1~ without ever moving path itself.
func rotateBackups(path string, n int, mode os.FileMode) error {
	if err := os.Remove(BackupName(path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := n - 1; i >= 1; i-- {
		if err := os.Rename(BackupName(path, i), BackupName(path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	b1 := BackupName(path, 1)
	if err := os.Link(path, b1); err == nil {
		return nil
	}
	return copyFile(path, b1, mode)
}

// unlinkBackup replaces backup by a copy when it is a hard link to path
// (rotateBackups made it so, and path was not replaced after all): a link
// would follow later edits made in place, and the next rotation would keep
// the same version twice.
func unlinkBackup(path, backup string, mode os.FileMode) {
	b, errB := os.Lstat(backup)
	p, errP := os.Stat(path)
	if errB == nil && errP == nil && os.SameFile(b, p) {
		copyFile(path, backup, mode)
	}
}

// copyFile copies src to dst through a temporary file and a rename.
func copyFile(src, dst string, mode os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	out, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if err = out.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	if err = fsync(out); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), dst)
}

// fsync is (*os.File).Sync (a variable for tests, which check what is
// synced when).
var fsync = (*os.File).Sync

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := fsync(d); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
