package ca

import (
	"strings"
	"testing"
)

// Errors about a caller's name or serial repeat a bounded part of it: the
// admin API takes 64 KiB bodies, whose values must not come back whole in
// answers and log lines.
func TestErrorsBoundEchoedInput(t *testing.T) {
	long := strings.Repeat("a", 300) + "_" + strings.Repeat("b", 60_000)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"device name", func() error { _, _, err := NormalizeDevice(long); return err }, "(60301 bytes)"},
		{"device name with a bad character", func() error { _, _, err := NormalizeDevice(strings.Repeat("a", 100) + "_"); return err }, "(101 bytes)"},
		{"serial", func() error { _, err := NormalizeSerial(long); return err }, "(60301 bytes)"},
		{"short device name kept whole", func() error { _, _, err := NormalizeDevice("gw_1.example"); return err }, `"gw_1.example"`},
		{"multibyte cut on a rune boundary", func() error { _, _, err := NormalizeDevice(strings.Repeat("é", 100)); return err }, "(200 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if len(msg) > 300 {
				t.Errorf("error of %d bytes: %.120s…", len(msg), msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.Contains(msg, `\x`) {
				t.Errorf("error %q cut a rune", msg)
			}
		})
	}
}
