package clearinghouse

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// test.sh runs the suite with -race when cgo and a C compiler are there;
// as root with apt-get it installs a missing gcc first; otherwise it warns
// and runs without -race, or fails under CI. Run with stub go, gofmt, id and
// apt-get commands, on a copy of the script, with only the stubs on PATH
// (and the few tools the script and stubs use), so that neither this
// machine's compiler nor its package manager takes part.
func TestTestScriptRaceDetector(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := os.ReadFile("test.sh")
	if err != nil {
		t.Fatal(err)
	}
	stubs := map[string]string{
		"go": `#!/bin/sh
case "$1 $2" in
"env CGO_ENABLED") echo "$STUB_CGO"; exit 0 ;;
"env CC") echo "$STUB_CC"; exit 0 ;;
esac
if [ "$1" = test ]; then echo "go $*" > "$STUB_LOG"; fi
`,
		"gofmt": "#!/bin/sh\n",
		"id":    "#!/bin/sh\necho \"$STUB_UID\"\n",
		// apt-get "installs" gcc by writing a stub compiler beside itself
		"apt-get": `#!/bin/sh
echo "apt-get $*" >> "$STUB_APT_LOG"
[ "$STUB_APT" = ok ] || exit 100
if [ "$1" = install ]; then printf '#!/bin/sh\n' > "$STUB_BIN/gcc" && chmod +x "$STUB_BIN/gcc"; fi
`,
	}
	// real tools the script (dirname) and the stubs (chmod) run, and sh, the
	// compiler of the cases that have one
	var tools []string
	for _, name := range []string{"dirname", "chmod", "sh"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("no %s", name)
		}
		tools = append(tools, p)
	}
	cases := []struct {
		name, cgo, cc, ci string
		uid               string // what id -u says
		apt               string // "": no apt-get; "ok": installs gcc; "fail": fails
		fails             bool
		race              bool
		stderr            string // "" for none
		installed         bool   // apt-get install ran
	}{
		{"race available", "1", "sh", "", "0", "ok", false, true, "", false},
		{"compiler with flags", "1", "sh -x", "", "0", "ok", false, true, "", false},
		{"cgo disabled", "0", "sh", "", "0", "ok", false, false, "WARNING: running without the race detector: cgo is disabled", false},
		{"no compiler", "1", "no-such-cc", "", "0", "ok", false, false, "WARNING: running without the race detector: the C compiler no-such-cc is not installed", false},
		{"no compiler under CI", "1", "no-such-cc", "true", "0", "ok", true, false, "the race detector is unavailable: the C compiler no-such-cc is not installed (apt-get install gcc); CI requires it", false},
		{"race available under CI", "1", "sh", "true", "0", "ok", false, true, "", false},
		{"gcc installed as root under CI", "1", "gcc", "true", "0", "ok", false, true, "test.sh: installing gcc with apt-get", true},
		{"gcc install fails under CI", "1", "gcc", "true", "0", "fail", true, false, "the race detector is unavailable: the C compiler gcc is not installed", false},
		{"gcc missing, not root", "1", "gcc", "", "1000", "ok", false, false, "WARNING: running without the race detector: the C compiler gcc is not installed", false},
		{"gcc missing, no apt-get", "1", "gcc", "", "0", "", false, false, "WARNING: running without the race detector: the C compiler gcc is not installed", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range stubs {
				if name == "apt-get" && c.apt == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range tools {
				if err := os.Symlink(p, filepath.Join(bin, filepath.Base(p))); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "test.sh"), script, 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, "go-test.log")
			aptLog := filepath.Join(dir, "apt-get.log")
			cmd := exec.Command("bash", filepath.Join(dir, "test.sh"))
			env := []string{"PATH=" + bin, "STUB_BIN=" + bin,
				"STUB_CGO=" + c.cgo, "STUB_CC=" + c.cc, "STUB_LOG=" + log,
				"STUB_UID=" + c.uid, "STUB_APT=" + c.apt, "STUB_APT_LOG=" + aptLog}
			if c.ci != "" {
				env = append(env, "CI="+c.ci)
			}
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if (err != nil) != c.fails {
				t.Fatalf("exit error %v, want failure %v\n%s", err, c.fails, stderr.String())
			}
			if c.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), c.stderr)
			}
			apt, _ := os.ReadFile(aptLog)
			if got := strings.Contains(string(apt), "apt-get install"); got != c.installed {
				t.Errorf("apt-get ran %q: install %v, want %v", apt, got, c.installed)
			}
			ran, err := os.ReadFile(log)
			if c.fails {
				if err == nil {
					t.Errorf("go test ran: %s", ran)
				}
				return
			}
			if err != nil {
				t.Fatalf("go test did not run: %v", err)
			}
			if got := strings.Contains(string(ran), " -race "); got != c.race {
				t.Errorf("go test %q: -race %v, want %v", ran, got, c.race)
			}
		})
	}
}
