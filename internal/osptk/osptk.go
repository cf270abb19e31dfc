// Package osptk builds the unmodified OSP Toolkit 4.33.1 (TransNexus,
// BSD-3) — a real seed-era client of the enrollment protocol — for
// interoperability tests. The source lives outside the repository, in
// ../shared/vendor/osptoolkit-4.33.1 beside it (or $OSPTK_SRC); build.sh in
// this folder compiles it with gcc without touching a source file.
package osptk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// EnvSource names the environment variable that overrides the source folder.
const EnvSource = "OSPTK_SRC"

// SourceRel is the toolkit's source folder relative to the shared folder.
const SourceRel = "vendor/osptoolkit-4.33.1"

var (
	once   sync.Once
	binDir string
	errB   error
	skipB  string
)

// RepoRoot is the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir is the project's shared folder, ../shared beside the repository
// (CI gets a copy there too).
func SharedDir() string { return filepath.Join(RepoRoot(), "..", "shared") }

// Source is the toolkit source folder the build uses.
func Source() string {
	if s := os.Getenv(EnvSource); s != "" {
		return s
	}
	return filepath.Join(SharedDir(), SourceRel)
}

// CacheDir is where the build is kept between test runs: a folder of the
// system's temporary folder named by a hash of build.sh and the source path,
// so an edited script or another source tree builds afresh.
func CacheDir() (string, error) {
	script, err := os.ReadFile(filepath.Join(RepoRoot(), "internal", "osptk", "build.sh"))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(script)
	h.Write([]byte{0})
	h.Write([]byte(Source()))
	return filepath.Join(os.TempDir(), "osptk-"+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// Build builds the toolkit once per test process (reusing the cached build
// of earlier runs) and returns the folder holding `enroll` and `test_app`.
// It skips the test only when the shared folder is absent (a checkout
// without the project's shared files, and without $OSPTK_SRC); any other
// problem, a failing build included, fails the test.
func Build(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if os.Getenv(EnvSource) == "" {
			if _, err := os.Stat(SharedDir()); os.IsNotExist(err) {
				skipB = fmt.Sprintf("OSP Toolkit interop: %s is absent (the project's shared folder, "+
					"which holds %s); set %s to a toolkit source tree to run this test", SharedDir(), SourceRel, EnvSource)
				return
			}
		}
		dir, err := CacheDir()
		if err != nil {
			errB = err
			return
		}
		cmd := exec.Command("bash", filepath.Join(RepoRoot(), "internal", "osptk", "build.sh"), dir)
		cmd.Env = append(os.Environ(), EnvSource+"="+Source())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			errB = fmt.Errorf("building the OSP Toolkit (internal/osptk/build.sh %s): %v\n%s", dir, err, stderr.String())
			return
		}
		binDir = strings.TrimSpace(string(out))
		for _, name := range []string{"enroll", "test_app"} {
			if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
				errB = fmt.Errorf("OSP Toolkit build printed %q but %s is missing: %v", binDir, name, err)
				return
			}
		}
	})
	if skipB != "" {
		t.Skip(skipB)
	}
	if errB != nil {
		t.Fatal(errB)
	}
	return binDir
}

// Library is the path of the toolkit library the build made (lib/libosptk.a),
// for harnesses linked against the unmodified toolkit.
func Library(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(Build(t)), "lib", "libosptk.a")
}

// BuildHarness compiles a C program (csrc, plus any extra sources) against
// the toolkit's headers and library, with the compiler flags build.sh uses
// for the toolkit itself, into a temporary folder of the test, and returns
// the executable's path. The toolkit's test/ folder is on the include path
// too, so a harness can include test_app.c (as osp/testdata/toolkit/validate.c
// does; it then needs test/nonblocking.c and test/syncque.c as extra sources).
// It skips the test where Build does; a failing compilation fails it.
func BuildHarness(t testing.TB, csrc string, extra ...string) string {
	t.Helper()
	lib := Library(t)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found (internal/osptk/build.sh installs it; was the build cached from another machine?)")
	}
	src := Source()
	exe := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(csrc), ".c"))
	args := []string{"-w", "-O0", "-g", "-D_GNU_SOURCE", "-D_XOPEN_SOURCE=700", "-D_POSIX_THREADS", "-D_REENTRANT", "-DOSP_SDK",
		"-I" + filepath.Join(src, "include"), "-I" + filepath.Join(src, "test"), "-o", exe, csrc}
	args = append(args, extra...)
	args = append(args, lib, "-lssl", "-lcrypto", "-lutf8proc", "-lpthread", "-lm")
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s against the OSP Toolkit: %v\n%s", csrc, err, out)
	}
	return exe
}
