package caddyenroll

import (
	"testing"
	"time"
)

// What a nonce found stored is taken as: bound to this request when it
// holds the binding or a legacy one of also, a replay otherwise, and an
// empty value (a write cut short on a full disk) a replay even when also
// holds an empty binding (enroll passes legacyRequestID's "" when the
// device name has no other spelling): else any request could reuse the
// nonce.
func TestNonceStoredValueMatched(t *testing.T) {
	const binding = "req:0123456789abcdef"
	for _, c := range []struct {
		name   string
		stored string
		want   bool
	}{
		{"this binding", binding, true},
		{"a legacy binding of also", "req", true},
		{"another binding", "other:0123456789abcdef", false},
		{"empty", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newNonceFixture(t, time.Hour)
			ctx := nonceTestCtx(t)
			f.clock = nonceEpoch.Add(30 * time.Minute)
			nonce := []byte("n")
			if err := f.fs.Store(ctx, nonceKey(f.s.bucket(f.clock), nonce), []byte(c.stored)); err != nil {
				t.Fatal(err)
			}
			if ok, err := f.s.bindNonceTo(ctx, nonce, binding, "req", ""); err != nil || ok != c.want {
				t.Errorf("bound %v (%v), want %v", ok, err, c.want)
			}
		})
	}
}

// A nonce is bound within the device's name in normal form: the same nonce
// sent again under another spelling of the name (case, a trailing dot) is
// the same device's, and so refused to another binding.
func TestDeviceNonceNormalForm(t *testing.T) {
	for _, c := range []struct{ first, again string }{
		{"gw1.example", "GW1.Example"},
		{"gw1.example", "gw1.example."},
	} {
		t.Run(c.again, func(t *testing.T) {
			f := newNonceFixture(t, time.Hour)
			ctx := nonceTestCtx(t)
			if ok, err := f.s.bindNonceTo(ctx, deviceNonce(c.first, []byte("n")), "A"); err != nil || !ok {
				t.Fatalf("first bind: %v (%v)", ok, err)
			}
			if ok, err := f.s.bindNonceTo(ctx, deviceNonce(c.again, []byte("n")), "B"); err != nil || ok {
				t.Errorf("reused as %q: bound %v (%v), want refused", c.again, ok, err)
			}
		})
	}
}
