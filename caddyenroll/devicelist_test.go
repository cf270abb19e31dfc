package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// The device listing reads each device's index, which the janitor prunes
// of certificates expired deviceIndexRetention ago: it shows a device's
// current and recent certificates, not every one it was ever issued.
func TestDeviceListingAfterIndexPruning(t *testing.T) {
	ctx := context.Background()
	cs, _, dir := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled\n")
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	clock := &testClock{now: time.Now().UTC()}
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern", Now: clock.Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(device string, validity time.Duration) string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
		if err != nil {
			t.Fatal(err)
		}
		is, err := c.Issue(ctx, csr, device, ca.Policy{Validity: validity})
		if err != nil {
			t.Fatal(err)
		}
		return is.Serial
	}
	var old []string
	for range 3 {
		old = append(old, issue("gw1.example", 24*time.Hour))
	}
	clock.add(deviceIndexRetention + 48*time.Hour)
	cur := issue("gw1.example", 365*24*time.Hour)
	a := &App{cfg: cs, storage: st, cas: map[string]*ca.CA{profileModern: c}, log: zap.NewNop(), bgCtx: ctx, clock: clock.Now}
	list := func() map[string][]string {
		code, body, _ := adminDo(t, &adminAPI{app: a, log: zap.NewNop()}, "GET", "/enroll/devices")
		var devs []DeviceInfo
		if err := json.Unmarshal([]byte(body), &devs); code != 200 || err != nil {
			t.Fatalf("%d %v: %s", code, err, body)
		}
		out := map[string][]string{}
		for _, d := range devs {
			out[d.Name] = []string{}
			for _, c := range d.Certificates {
				out[d.Name] = append(out[d.Name], c.Serial)
			}
		}
		return out
	}
	if got := list(); len(got["gw1.example"]) != 4 || len(got["gw2.example"]) != 0 {
		t.Fatalf("before pruning: %v", got)
	}
	a.pruneDeviceIndexes(clock.Now())
	if got := list(); len(got["gw1.example"]) != 1 || got["gw1.example"][0] != cur {
		t.Fatalf("after pruning: %v; want only %s", got, cur)
	}
	if _, err := c.Lookup(ctx, old[0]); err != nil {
		t.Fatalf("the record of a pruned certificate: %v", err)
	}
}

// Certificates signed within one second (NotBefore has seconds only) are
// listed in the order they were signed: the last is the device's current.
func TestCertificateOrderWithinASecond(t *testing.T) {
	sec := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	first := CertificateInfo{Serial: "b", NotBefore: sec, IssuedAt: sec.Add(100 * time.Millisecond)}
	second := CertificateInfo{Serial: "a", NotBefore: sec, IssuedAt: sec.Add(900 * time.Millisecond)}
	old := CertificateInfo{Serial: "c", NotBefore: sec.Add(-time.Hour)} // an earlier version's record
	if !certificateBefore(&first, &second) || certificateBefore(&second, &first) {
		t.Fatal("certificates of one second not ordered by when they were signed")
	}
	if !certificateBefore(&old, &first) || certificateBefore(&first, &old) {
		t.Fatal("a record without issued_at not ordered by not_before")
	}
}
