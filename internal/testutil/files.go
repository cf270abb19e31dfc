package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// InternalRootPEM waits for the root certificate of Caddy's internal CA in
// a file-system storage folder (Caddy writes it when it first needs it) and
// returns it as PEM.
func InternalRootPEM(t testing.TB, storageDir string) []byte {
	t.Helper()
	path := filepath.Join(storageDir, "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("no root certificate at %s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// GoldenBody returns a golden file without its leading '#' comment lines,
// byte for byte.
func GoldenBody(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for bytes.HasPrefix(b, []byte("#")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.Fatalf("%s: only comments", path)
		}
		b = b[i+1:]
	}
	return b
}
