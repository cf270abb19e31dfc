package caddyenroll

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckAgreesWithServer: `caddy enroll check FILE` refuses what the
// server refuses as config_file at provision, with the same message, and
// takes what it takes.
func TestCheckAgreesWithServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content *string // nil: no file
		wantErr string  // "" : taken
	}{
		{"good", ptr("group g\ndevice d.example.com g enabled\n"), ""},
		{"only a comment", ptr("# nothing yet\n"), ""},
		{"empty", ptr(""), "the file is empty (a write cut short?), which is never taken"},
		{"missing", nil, "no such file or directory"},
		{"invalid", ptr("group g\nfrobnicate\n"), ":2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ch.conf")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, serverErr := loadConfigState(path, 0)
			var out, errOut bytes.Buffer
			checkErr := runCheck(&out, &errOut, path)
			if tc.wantErr == "" {
				if serverErr != nil || checkErr != nil {
					t.Fatalf("server: %v; check: %v (stderr %q), want both to take it", serverErr, checkErr, errOut.String())
				}
				return
			}
			if serverErr == nil || checkErr == nil {
				t.Fatalf("server: %v; check: %v (stdout %q), want both to refuse it", serverErr, checkErr, out.String())
			}
			if out.Len() != 0 {
				t.Errorf("check printed a summary of a refused file: %q", out.String())
			}
			if !strings.Contains(serverErr.Error(), tc.wantErr) {
				t.Errorf("server: %v, want %q in it", serverErr, tc.wantErr)
			}
			// every line the server says is said by check (on stderr, or
			// as the error cobra prints)
			said := errOut.String() + checkErr.Error()
			for _, line := range strings.Split(serverErr.Error(), "\n") {
				if !strings.Contains(said, line) {
					t.Errorf("check says %q, lacking the server's %q", said, line)
				}
			}
			if tc.name == "empty" && !errors.Is(checkErr, errEmptied) {
				t.Errorf("check of an empty file: %v, want errEmptied", checkErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
