package caddyenroll_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// The enroll verifier keeps every handler of a client_auth site to devices
// in good standing: a certificate the CA signed but later revoked is
// refused at the handshake, resumed sessions included, and with `usable`
// so is one whose device the file no longer has enabled; with `mode
// request` (no chain check, as legacy MD5 certificates need) it is what
// keeps foreign certificates out.
func TestClientVerifierRefusesRevokedCertificates(t *testing.T) {
	verifyAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	usableAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
	sites := fmt.Sprintf(`https://:%s {
	bind 127.0.0.1
	tls {
		client_auth {
			mode require_and_verify
			trust_pool enroll modern
			verifier enroll
		}
	}
	respond "hello {http.request.tls.client.subject}"
}
https://:%s {
	bind 127.0.0.1
	tls {
		client_auth {
			mode request
			verifier enroll usable
		}
	}
	respond "usable"
}`, port(verifyAddr), port(usableAddr))
	s := &ospServer{server: startServer(t, serverOpts{sites: sites, waitAddrs: []string{verifyAddr, usableAddr}})}
	get := func(c *http.Client, addr string) (string, error) {
		t.Helper()
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %d %s", resp.StatusCode, b)
		}
		return string(b), nil
	}
	// a fresh connection for every request (and a session cache, so that
	// the next one resumes the TLS session)
	fresh := func(c *http.Client) *http.Client {
		tr := c.Transport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(8)
		return &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}

	dev1, cert1, _ := s.enrolledDevice("device1.itsp.com")
	dev1 = fresh(dev1)
	for _, addr := range []string{verifyAddr, usableAddr} {
		if body, err := get(dev1, addr); err != nil || (addr == verifyAddr && !strings.Contains(body, "device1.itsp.com")) {
			t.Fatalf("enrolled device at %s: %q, %v", addr, body, err)
		}
	}
	foreign := fresh(s.clientWith(selfSigned(t, "device2.itsp.com")))
	for _, addr := range []string{verifyAddr, usableAddr} {
		if body, err := get(foreign, addr); err == nil {
			t.Errorf("a certificate of another CA was let in at %s: %q", addr, body)
		}
	}

	// revoked through the admin API: refused at the next handshake, which
	// would resume the session of the requests above
	if code, body := s.Admin("POST", "/enroll/revoke", `{"serial": "`+cert1.SerialNumber.Text(16)+`"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for _, addr := range []string{verifyAddr, usableAddr} {
		if body, err := get(dev1, addr); err == nil {
			t.Errorf("a revoked certificate was let in at %s: %q", addr, body)
		}
	}

	// usable: a device the operator no longer marks enrolled is refused
	// there (its certificate stands: the other site lets it in)
	dev2, _, _ := s.enrolledDevice("device2.itsp.com")
	dev2 = fresh(dev2)
	if _, err := get(dev2, usableAddr); err != nil {
		t.Fatalf("enrolled device2 at the usable site: %v", err)
	}
	s.editConf(t, "device 'device2.itsp.com' 'ACME ITSP' enabled enrolled", "device 'device2.itsp.com' 'ACME ITSP' enabled")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := get(dev2, usableAddr); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a device the file does not mark enrolled is still let in at the usable site")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := get(dev2, verifyAddr); err != nil {
		t.Errorf("device2, unmarked but not revoked, refused at the verify site: %v", err)
	}
}
