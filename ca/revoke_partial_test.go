package ca

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// failingWrites fails the writes of storage keys containing part, and the
// unlock of the CA's lock when unlock is set: what can fail after the
// revoked list of a revocation is written (an issuance record), or before
// (the list itself).
type failingWrites struct {
	countedStore
	part   string
	unlock bool
}

func (s failingWrites) Store(ctx context.Context, key string, value []byte) error {
	if s.part != "" && strings.Contains(key, s.part) {
		return &fs.PathError{Op: "write", Path: key, Err: syscall.ENOSPC}
	}
	return s.countedStore.Store(ctx, key, value)
}

func (s failingWrites) Unlock(ctx context.Context, name string) error {
	if err := s.countedStore.Unlock(ctx, name); err != nil || !s.unlock {
		return err
	}
	return errors.New("unlock failed")
}

// A revocation that fails after writing the revoked list has revoked what
// the list holds, and says so with its error: RevokeDevice returns those
// serials and RevokeSerial reports the certificate newly revoked (both
// said nothing, and a repeat, which finds them listed, reports them
// revoked already: no one counted them, no event named them). A failure
// before the list is written returns none.
func TestRevocationFailingAfterTheList(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		fail     failingWrites
		revoked  bool // what the failed call revoked
		failWith error
	}{
		{"issuance record not written", failingWrites{part: "/" + keyIssued + "/"}, true, syscall.ENOSPC},
		{"unlock failed", failingWrites{unlock: true}, true, nil},
		{"revoked list not written", failingWrites{part: keyRevoked}, false, syscall.ENOSPC},
	}
	for _, tt := range tests {
		for _, bySerial := range []bool{false, true} {
			name := tt.name + ", RevokeDevice"
			if bySerial {
				name = tt.name + ", RevokeSerial"
			}
			t.Run(name, func(t *testing.T) {
				mem := NewMemStore()
				c, _ := openCA(t, mem, Config{}, "")
				fail := tt.fail
				fail.countedStore = mem
				failing, _ := openCA(t, fail, Config{}, c.CryptoParam())
				is := issueN(t, c, "device1.itsp.com", 2)
				old := is[0].Serial

				var got []string
				var err error
				if bySerial {
					var newly bool
					newly, err = failing.RevokeSerial(ctx, old, ReasonSuperseded)
					if newly {
						got = []string{old}
					}
				} else {
					got, err = failing.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, is[1].Serial)
				}
				if err == nil || (tt.failWith != nil && !errors.Is(err, tt.failWith)) {
					t.Fatalf("revocation: %v, want an error (%v)", err, tt.failWith)
				}
				var want []string
				if tt.revoked {
					want = []string{old}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("the failed revocation reported %v revoked, want %v", got, want)
				}
				if listed, err := c.IsRevoked(ctx, old); err != nil || listed != tt.revoked {
					t.Fatalf("IsRevoked after the failure: %v (%v), want %v", listed, err, tt.revoked)
				}

				// the repeat completes it, and reports newly revoked only
				// what the failed call did not
				again, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, is[1].Serial)
				if err != nil {
					t.Fatal(err)
				}
				if tt.revoked == (len(again) != 0) {
					t.Fatalf("the repeat reported %v revoked (the failed call: %v)", again, got)
				}
				if rec, err := c.Lookup(ctx, old); err != nil || !rec.Revoked {
					t.Fatalf("record after the repeat: %+v (%v), want revoked", rec, err)
				}
			})
		}
	}
}
