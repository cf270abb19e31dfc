package caddyenroll

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
)

// hashKeyFmt is hashKey as earlier versions wrote it: the keys it names
// are shared with instances of those versions, so they must not change.
func hashKeyFmt(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

var keyNameSamples = []string{
	"", "a", "clearinghouse_enroll_device_0123abcd", "device1.itsp.com",
	"Device1.ITSP.com", " padded ", "a..b", "..", ".hidden", "a.b.c", "x/y", `x\y`,
	"a+b", "*.example.com", "host:5060", "ünïcode", "tab\there", "at@sign", "dash-ed",
	strings.Repeat("long", 100), "a;b", "1:2;3",
}

func TestHashKeyUnchanged(t *testing.T) {
	for _, a := range keyNameSamples {
		for _, b := range keyNameSamples[:5] {
			if got, want := hashKey(a, b), hashKeyFmt(a, b); got != want {
				t.Fatalf("hashKey(%q, %q) = %s, earlier versions: %s", a, b, got, want)
			}
		}
		if got, want := hashKey(a), hashKeyFmt(a); got != want {
			t.Fatalf("hashKey(%q) = %s, earlier versions: %s", a, got, want)
		}
	}
	if got, want := hashKey(), hashKeyFmt(); got != want {
		t.Fatalf("hashKey() = %s, want %s", got, want)
	}
}

// Lock files are shared with certmagic and earlier versions: their names
// must be certmagic's.
func TestSafeLockNameIsCertmagics(t *testing.T) {
	for _, s := range keyNameSamples {
		if got, want := safeLockName(s), certmagic.StorageKeys.Safe(s); got != want {
			t.Errorf("safeLockName(%q) = %q, certmagic: %q", s, got, want)
		}
	}
}

func FuzzSafeLockName(f *testing.F) {
	for _, s := range keyNameSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := safeLockName(s), certmagic.StorageKeys.Safe(s); got != want {
			t.Fatalf("safeLockName(%q) = %q, certmagic: %q", s, got, want)
		}
		if got, want := hashKey(s, s), hashKeyFmt(s, s); got != want {
			t.Fatalf("hashKey(%q, %q) = %s, earlier versions: %s", s, s, got, want)
		}
	})
}
