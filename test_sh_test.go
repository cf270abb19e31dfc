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
// otherwise it warns and runs without, or fails under CI. Run with stub
// go and gofmt commands, on a copy of the script.
func TestTestScriptRaceDetector(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := os.ReadFile("test.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	stubs := map[string]string{
		"go": `#!/bin/sh
case "$1 $2" in
"env CGO_ENABLED") echo "$STUB_CGO"; exit 0 ;;
"env CC") echo "$STUB_CC"; exit 0 ;;
esac
if [ "$1" = test ]; then echo "go $*" > "$STUB_LOG"; fi
`,
		"gofmt": "#!/bin/sh\n",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, cgo, cc, ci string
		fails             bool
		race              bool
		stderr            string // "" for none
	}{
		{"race available", "1", "sh", "", false, true, ""},
		{"compiler with flags", "1", "sh -x", "", false, true, ""},
		{"cgo disabled", "0", "sh", "", false, false, "WARNING: running without the race detector: cgo is disabled"},
		{"no compiler", "1", "no-such-cc", "", false, false, "WARNING: running without the race detector: the C compiler no-such-cc is not installed"},
		{"no compiler under CI", "1", "no-such-cc", "true", true, false, "the race detector is unavailable: the C compiler no-such-cc is not installed (apt-get install gcc); CI requires it"},
		{"race available under CI", "1", "sh", "true", false, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "test.sh"), script, 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, "go-test.log")
			cmd := exec.Command("bash", filepath.Join(dir, "test.sh"))
			env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
				"STUB_CGO=" + c.cgo, "STUB_CC=" + c.cc, "STUB_LOG=" + log}
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
