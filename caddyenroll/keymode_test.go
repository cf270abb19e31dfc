package caddyenroll

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// The private keys the server writes into Caddy's default (file system)
// storage — the operational CA's and the OSP token signer's — are mode 0600
// in directories 0700 (README, "Key theft", "Two identities", "State in
// Caddy's storage"). ca.TestOpenFileStorePermissions checks the ca
// package's own file store only; this is the storage the server uses.
func TestStoredPrivateKeysMode0600(t *testing.T) {
	f := newRefreshFixture(t)
	f.app.log = zap.NewNop()
	if _, err := f.app.tokenSigner(f.ctx, profileModern); err != nil {
		t.Fatal(err)
	}
	root := f.st.Storage.(*certmagic.FileStorage).Path
	var keys []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if p != root && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("directory %s is mode %04o: others may list the CA's files", rel, fi.Mode().Perm())
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte("PRIVATE KEY-----")) {
			return nil
		}
		keys = append(keys, filepath.ToSlash(rel))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("private key %s is mode %04o, want 0600", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(keys, " ")
	if !strings.Contains(joined, "clearinghouse/ca/") || !strings.Contains(joined, "clearinghouse/osp/modern/token.key") {
		t.Fatalf("private keys found: %v; want the CA's and the token signer's", keys)
	}
}
