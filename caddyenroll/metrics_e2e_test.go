package caddyenroll_test

import (
	"crypto/x509"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// metric is the sum of the samples of the metric name whose labels include
// all of labels, from Caddy's admin /metrics (0 when it has none).
func (s *server) metric(name string, labels map[string]string) float64 {
	s.t.Helper()
	code, body := s.Admin("GET", "/metrics", "")
	if code != 200 {
		s.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		got := map[string]string{}
		n, set, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSuffix(set, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				got[k] = strings.Trim(v, `"`)
			}
		}
		match := true
		for k, v := range labels {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			s.t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += f
	}
	return sum
}

// One auto-approved enrollment and one request with a wrong password count
// one request each under their outcome, and one certificate issued.
func TestMetricsCountEnrollments(t *testing.T) {
	s := startServer(t, serverOpts{})
	const requests, issued = "caddy_clearinghouse_enroll_requests_total", "caddy_clearinghouse_certificates_issued_total"
	outcome := func(status int) map[string]string {
		return map[string]string{"profile": "modern", "operation": wire.OpRequest, "status": strconv.Itoa(status)}
	}
	modern := map[string]string{"profile": "modern"}
	okBefore, badBefore := s.metric(requests, outcome(wire.StatusOK)), s.metric(requests, outcome(wire.StatusBadCredentials))
	allBefore := s.metric(requests, map[string]string{"operation": wire.OpRequest})
	issuedBefore := s.metric(issued, modern)

	_, csr := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d %s", a.Status, a.Error)
	}
	r := enrollReq(wire.OpRequest, t, csr)
	r.Password = "wrong"
	if a := s.do(r); a.Status != wire.StatusBadCredentials {
		t.Fatalf("wrong password: status %d %s", a.Status, a.Error)
	}

	for _, c := range []struct {
		what                string
		before, after, more float64
	}{
		{"requests issued", okBefore, s.metric(requests, outcome(wire.StatusOK)), 1},
		{"requests with bad credentials", badBefore, s.metric(requests, outcome(wire.StatusBadCredentials)), 1},
		{"requests, any outcome", allBefore, s.metric(requests, map[string]string{"operation": wire.OpRequest}), 2},
		{"certificates issued", issuedBefore, s.metric(issued, modern), 1},
	} {
		if c.after != c.before+c.more {
			t.Errorf("%s: %v after, %v before, want %v more", c.what, c.after, c.before, c.more)
		}
	}
}

// Revoking a device for key compromise lists its superseded certificate
// too (its reason on the CRL becomes keyCompromise), but counts only the
// newly revoked one.
func TestRevokeDeviceForKeyCompromise(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	var serials []*big.Int
	for range 2 { // the second enrollment supersedes the first
		_, csr := p256CSR(t, "device4.com")
		a := s.do(enrollReq(wire.OpRequest, t, csr))
		if a.Status != wire.StatusOK {
			t.Fatalf("enrollment: status %d %s", a.Status, a.Error)
		}
		c, err := x509.ParseCertificate(a.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, c.SerialNumber)
	}
	before := s.metric("caddy_clearinghouse_certificates_revoked_total", nil)
	code, body := s.Admin("POST", "/enroll/revoke", `{"device":"device4.com","reason":1}`)
	if code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	var ans struct{ Revoked []string }
	if err := json.Unmarshal([]byte(body), &ans); err != nil || len(ans.Revoked) != 2 {
		t.Fatalf("answer %s (%v), want both serials", body, err)
	}
	for _, sn := range serials {
		if !slices.ContainsFunc(ans.Revoked, func(r string) bool { return strings.EqualFold(r, sn.Text(16)) }) {
			t.Errorf("answer %v lacks serial %x", ans.Revoked, sn)
		}
	}
	if d := s.metric("caddy_clearinghouse_certificates_revoked_total", nil) - before; d != 1 {
		t.Errorf("certificates_revoked_total went up by %v, want 1 (the other was revoked already)", d)
	}
	entries := s.fetchCRL(caCert).RevokedCertificateEntries
	if len(entries) != len(serials) {
		t.Errorf("CRL lists %d certificates, want %d", len(entries), len(serials))
	}
	for _, e := range entries {
		if e.ReasonCode != ca.ReasonKeyCompromise {
			t.Errorf("serial %x on the CRL with reason %d, want key compromise", e.SerialNumber, e.ReasonCode)
		}
	}
}
