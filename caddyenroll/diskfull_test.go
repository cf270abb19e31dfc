package caddyenroll

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/caddyserver/certmagic"
)

// fullStorage is a storage whose disk is full: reads work, every write
// and every lock (a lock file to create) fails with ENOSPC, as Caddy's
// file storage then does.
type fullStorage struct{ certmagic.Storage }

func errFull(key string) error {
	return &fs.PathError{Op: "write", Path: key, Err: syscall.ENOSPC}
}

func (s fullStorage) Store(_ context.Context, key string, _ []byte) error { return errFull(key) }
func (s fullStorage) Lock(_ context.Context, name string) error {
	return errFull("locks/" + name + ".lock")
}

// A token signer already in storage is read without a lock: a restart on
// a full disk served no site with an osp handler (its provisioning failed
// at creating the token signer's lock file, to read what was there).
func TestTokenSignerReadOnFullDisk(t *testing.T) {
	f := newRefreshFixture(t)
	made, err := f.app.tokenSigner(f.ctx, profileModern)
	if err != nil {
		t.Fatal(err)
	}
	f.app.authz.signers = nil // a restart
	f.app.storage = fullStorage{f.app.storage}
	got, err := f.app.tokenSigner(f.ctx, profileModern)
	if err != nil {
		t.Fatalf("token signer on a full disk: %v", err)
	}
	if !got.Cert.Equal(made.Cert) {
		t.Fatal("token signer on a full disk is not the stored one")
	}
	// none in storage: a new one needs the lock, and its error is told
	f.app.authz.signers = nil
	f.app.storage = fullStorage{localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
	if _, err := f.app.tokenSigner(f.ctx, profileModern); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("new token signer on a full disk: %v, want ENOSPC", err)
	}
}
