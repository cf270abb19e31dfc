package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A revocation that fails after its revoked list (the CRL's source) is
// written — the certificate's record could not be stored — has revoked
// the certificate: it is counted, its enroll_revoked event is emitted and
// an administrator's answer names it, on every path (none of them did: the
// revocation was reported as failed, and its repeat, finding the serial
// listed, as done before, so no count and no event ever named it).
func TestRevocationFailedAfterTheListCounted(t *testing.T) {
	for _, tc := range []struct {
		path string
		by   string // the event's "by"
	}{
		{"admin by serial", "admin"},
		{"admin by device", "admin"},
		{"superseded", "superseded"},
		{"disabled", "disabled"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			keepPendingCount(t)
			failSerial := new(atomic.Pointer[string])
			st := serialRecordFailStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, serial: failSerial}
			h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
			rec := notifying(t, h.app)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			first := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
			if first.Status != wire.StatusOK {
				t.Fatalf("issuance: %+v", first)
			}
			rec.waitFor(t, 1) // enroll_issued
			cert, err := x509.ParseCertificate(first.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			serial := strings.ToLower(cert.SerialNumber.Text(16))
			failSerial.Store(&serial)
			counted := promtest.ToFloat64(metrics.revoked)
			ad := &adminAPI{app: h.app, log: zap.NewNop()}

			switch tc.path {
			case "admin by serial", "admin by device":
				body := `{"serial": "` + serial + `"}`
				if tc.path == "admin by device" {
					body = `{"device": "gw1.example"}`
				}
				code, answer, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", body)
				if code != http.StatusInternalServerError || !strings.Contains(answer, serial+" revoked") {
					t.Fatalf("revoke with the record not storable: %d %s, want 500 naming %s revoked", code, answer, serial)
				}
			case "superseded":
				other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if got := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", other); got.Status != wire.StatusServerError {
					t.Fatalf("enrollment whose supersession fails: status %d %q, want %d", got.Status, got.Error, wire.StatusServerError)
				}
			case "disabled":
				saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" disabled\n")
				if _, err := h.app.cfg.reload(); err != nil {
					t.Fatal(err)
				}
				h.app.revokeDisabled([]string{"gw1.example"}, time.Now())
			}
			if revoked, err := h.app.cas[profileModern].IsRevoked(context.Background(), serial); err != nil || !revoked {
				t.Fatalf("the revoked list does not hold %s (%v): the failure is not after it", serial, err)
			}
			if n := promtest.ToFloat64(metrics.revoked) - counted; n != 1 {
				t.Errorf("%v revocations counted, want 1", n)
			}
			got := revokedEvent(t, rec)
			if serials, _ := got.data["serials"].([]string); got.name != eventRevoked || !slices.Equal(serials, []string{serial}) || got.data["by"] != tc.by {
				t.Fatalf("event %s %v, want enroll_revoked of %s by %s", got.name, got.data, serial, tc.by)
			}

			// the repeat completes the record: not counted again
			failSerial.Store(nil)
			if tc.path == "admin by serial" || tc.path == "admin by device" {
				if code, answer, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"serial": "`+serial+`"}`); code != http.StatusOK {
					t.Fatalf("repeated revoke: %d %s", code, answer)
				}
				if r, err := h.app.cas[profileModern].Lookup(context.Background(), serial); err != nil || !r.Revoked {
					t.Fatalf("record after the repeat: %+v (%v), want revoked", r, err)
				}
			}
			if n := promtest.ToFloat64(metrics.revoked) - counted; n != 1 {
				t.Errorf("after the repeat %v revocations counted, want 1", n)
			}
		})
	}
}

// revokedEvent is the first enroll_revoked event rec records, failing
// after 10 s.
func revokedEvent(t *testing.T, rec *eventRecorder) recordedEvent {
	t.Helper()
	for n := 1; ; n++ {
		got := rec.waitFor(t, n)
		if i := slices.IndexFunc(got, func(e recordedEvent) bool { return e.name == eventRevoked }); i >= 0 {
			return got[i]
		}
	}
}
