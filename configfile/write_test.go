package configfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTemps fails if a temporary file was left in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
}

func TestWriteFileAtomicNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "new.conf")
	if err := WriteFileAtomic(p, []byte("ssl enabled\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if readFile(t, p) != "ssl enabled\n" {
		t.Error("content")
	}
	if _, err := os.Stat(BackupName(p, 1)); !os.IsNotExist(err) {
		t.Error("backup of a file that did not exist")
	}
	p2 := filepath.Join(dir, "new2.conf")
	if err := WriteFileAtomic(p2, nil, SaveOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p2); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	noTemps(t, dir)
}

func TestWriteFileAtomicBackups(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(p, []byte("v0\n"), 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o604); err != nil { // umask-proof
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		// the mode of the existing file wins over Mode
		if err := WriteFileAtomic(p, []byte("v"+strconv.Itoa(i)+"\n"), SaveOptions{Backups: 3, Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
	}
	if readFile(t, p) != "v7\n" {
		t.Errorf("current = %q", readFile(t, p))
	}
	for n, want := range map[int]string{1: "v6\n", 2: "v5\n", 3: "v4\n"} {
		if got := readFile(t, BackupName(p, n)); got != want {
			t.Errorf("backup %d = %q, want %q", n, got, want)
		}
	}
	if _, err := os.Stat(BackupName(p, 4)); !os.IsNotExist(err) {
		t.Error("more backups than asked for")
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o604 {
		t.Errorf("mode %v, want 0604 kept", fi.Mode().Perm())
	}
	noTemps(t, dir)

	// the default is 5 backups; a negative number keeps none
	for i := 8; i <= 15; i++ {
		WriteFileAtomic(p, []byte("v"+strconv.Itoa(i)+"\n"), SaveOptions{})
	}
	if readFile(t, BackupName(p, 5)) != "v10\n" {
		t.Errorf("backup 5 = %q", readFile(t, BackupName(p, 5)))
	}
	if _, err := os.Stat(BackupName(p, 6)); !os.IsNotExist(err) {
		t.Error("default keeps more than 5 backups")
	}
	if err := WriteFileAtomic(p, []byte("v16\n"), SaveOptions{Backups: -1}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, BackupName(p, 1)) != "v14\n" {
		t.Error("Backups -1 rotated the backups")
	}
}

func TestWriteFileAtomicSymlinkAndErrors(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.conf")
	link := filepath.Join(dir, "link.conf")
	os.WriteFile(real, []byte("old\n"), 0o640)
	if err := os.Symlink("real.conf", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced")
	}
	if readFile(t, real) != "new\n" || readFile(t, BackupName(real, 1)) != "old\n" {
		t.Error("the link target was not updated with a backup")
	}
	// a directory is refused and nothing is left behind
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	if err := WriteFileAtomic(sub, []byte("x"), SaveOptions{}); err == nil {
		t.Error("wrote over a directory")
	}
	// a missing directory fails cleanly
	if err := WriteFileAtomic(filepath.Join(dir, "none", "c.conf"), []byte("x"), SaveOptions{}); err == nil {
		t.Error("wrote into a missing directory")
	}
	noTemps(t, dir)
}

// BeforeReplace runs once the new version is written, before the backups
// rotate and path changes; its error leaves path and its backups as they
// were.
func TestWriteFileAtomicBeforeReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.conf")
	if err := WriteFileAtomic(p, []byte("v0\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("v1\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("replaced meanwhile")
	calls := 0
	err := WriteFileAtomic(p, []byte("v2\n"), SaveOptions{BeforeReplace: func(os.FileInfo) error {
		calls++
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".c.conf.tmp-*")); len(tmps) != 1 || readFile(t, tmps[0]) != "v2\n" {
			t.Errorf("before the replace, the temporary files are %q, want one holding the new version", tmps)
		}
		return refused
	}})
	if !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("write refused by BeforeReplace: %v (%d calls)", err, calls)
	}
	if readFile(t, p) != "v1\n" {
		t.Errorf("after a refused write: %q, want it unchanged", readFile(t, p))
	}
	if readFile(t, BackupName(p, 1)) != "v0\n" {
		t.Errorf("after a refused write, backup %q, want it unchanged", readFile(t, BackupName(p, 1)))
	}
	if _, err := os.Stat(BackupName(p, 2)); err == nil {
		t.Error("a refused write rotated the backups")
	}
	noTemps(t, dir)
	// an edit in place changes the file, never a backup
	if err := os.WriteFile(p, []byte("v1 edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var written os.FileInfo
	if err := WriteFileAtomic(p, []byte("v3\n"), SaveOptions{BeforeReplace: func(fi os.FileInfo) error { written = fi; return nil }}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, p) != "v3\n" || readFile(t, BackupName(p, 1)) != "v1 edited\n" || readFile(t, BackupName(p, 2)) != "v0\n" {
		t.Errorf("after an accepted write: %q, backups %q %q", readFile(t, p), readFile(t, BackupName(p, 1)), readFile(t, BackupName(p, 2)))
	}
	// the FileInfo given is the file now at p
	if fi, err := os.Stat(p); err != nil || written == nil || !os.SameFile(fi, written) ||
		fi.Size() != written.Size() || !fi.ModTime().Equal(written.ModTime()) {
		t.Errorf("BeforeReplace was given %v, the file written is %v", written, fi)
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("data"), 0o600)
	if err := copyFile(a, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if readFile(t, b) != "data" {
		t.Error("copy differs")
	}
	if err := copyFile(filepath.Join(dir, "missing"), b, 0o640); err == nil {
		t.Error("copied a missing file")
	}
	noTemps(t, dir)
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "clearinghouse.conf")
	src := readFile(t, "testdata/clearinghouse.conf")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o600)
	f, err := ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetEnrolled("device4.com", true); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(p, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetEnabled("device5.com", true); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(p, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, p)
	want := src
	for _, r := range [][2]string{
		{"device 'device4.com' 'HK Telecom' enabled\n", "device 'device4.com' 'HK Telecom' enabled enrolled\n"},
		{"device 'device5.com' 'HK Telecom' disabled\n", "device 'device5.com' 'HK Telecom' enabled\n"},
	} {
		want = replaceOnce(t, want, r[0], r[1])
	}
	if got != want {
		t.Errorf("saved file:\n%s", got)
	}
	if readFile(t, BackupName(p, 2)) != src {
		t.Error("backup 2 is not the original")
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	g, err := ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Diff(g); d != "" {
		t.Error(d)
	}
	noTemps(t, dir)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := strings.Index(s, old)
	if i < 0 {
		t.Fatalf("%q not found", old)
	}
	return s[:i] + new + s[i+len(old):]
}

// A dangling symbolic link (one whose file does not exist yet) is followed:
// the file is created where it points, through a chain of links, relative
// to each link's directory, and the links stay links. A loop is refused.
func TestWriteFileAtomicDanglingSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	dir := t.TempDir()
	for _, d := range []string{"etc", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// etc/ch.conf -> ../data/link2 -> abs(data/ch.conf), which is missing
	target := filepath.Join(dir, "data", "ch.conf")
	link1, link2 := filepath.Join(dir, "etc", "ch.conf"), filepath.Join(dir, "data", "link2")
	if err := os.Symlink(target, link2); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../data/link2", link1); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link1, []byte("one\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{link1, link2} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symbolic link", l)
		}
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatalf("the file the links point to was not created: %v", err)
	}
	if readFile(t, link1) != "one\n" || fi.Mode().Perm() != DefaultMode {
		t.Errorf("target: %q, mode %v", readFile(t, target), fi.Mode().Perm())
	}
	// the next write replaces it with a backup, through the links
	if err := WriteFileAtomic(link1, []byte("two\n"), SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, target) != "two\n" || readFile(t, BackupName(target, 1)) != "one\n" {
		t.Error("second write through the links")
	}
	noTemps(t, filepath.Join(dir, "etc"))
	noTemps(t, filepath.Join(dir, "data"))

	// a loop of links is refused, and nothing is created
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.Symlink("b", a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", b); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(a, []byte("x"), SaveOptions{}); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("loop: %v", err)
	}
	if fi, err := os.Lstat(a); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the looping link was replaced")
	}
	noTemps(t, dir)
}

// With Replaces, a version renamed onto the file after BeforeReplace ran
// (an editor's save) is not written over: the swap is undone and
// ErrReplaced returned (Linux); the version meant is replaced as usual.
func TestWriteFileAtomicReplaces(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("atomic swaps (renameat2 RENAME_EXCHANGE) are Linux's")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(p, []byte("v1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	v1, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// the operator saves as editors do, after the last check
	editorSave := func(content string) func(os.FileInfo) error {
		return func(os.FileInfo) error {
			tmp := filepath.Join(dir, ".c.conf.swp")
			if err := os.WriteFile(tmp, []byte(content), 0o640); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		}
	}
	err = WriteFileAtomic(p, []byte("server\n"), SaveOptions{Replaces: v1, BeforeReplace: editorSave("operator\n")})
	if !errors.Is(err, ErrReplaced) {
		t.Fatalf("write over a version saved meanwhile: %v, want ErrReplaced", err)
	}
	if got := readFile(t, p); got != "operator\n" {
		t.Fatalf("file holds %q, want the operator's version", got)
	}
	noTemps(t, dir)

	// written in place since it was read (same file, other size)
	cur, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteFileAtomic(p, []byte("server\n"), SaveOptions{Replaces: cur, BeforeReplace: func(os.FileInfo) error {
		return os.WriteFile(p, []byte("operator, in place\n"), 0o640)
	}})
	if !errors.Is(err, ErrReplaced) || readFile(t, p) != "operator, in place\n" {
		t.Fatalf("write over a version written in place meanwhile: %v, file %q", err, readFile(t, p))
	}
	noTemps(t, dir)

	// the version meant is replaced, and kept as the backup
	cur, err = os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("server\n"), SaveOptions{Replaces: cur}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != "server\n" {
		t.Fatalf("file holds %q", got)
	}
	if got := readFile(t, BackupName(p, 1)); got != "operator, in place\n" {
		t.Fatalf("backup holds %q, want the replaced version", got)
	}
	noTemps(t, dir)

	// a new file has nothing to swap with
	q := filepath.Join(dir, "new.conf")
	if err := WriteFileAtomic(q, []byte("x\n"), SaveOptions{Replaces: cur}); err != nil || readFile(t, q) != "x\n" {
		t.Fatalf("new file: %v", err)
	}
}
