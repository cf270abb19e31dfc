package caddyenroll_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// adminRequest sends method uri with headers (Host sets the request's
// host) to a real Caddy's admin endpoint at base through client, and
// returns the status and body.
func adminRequest(t *testing.T, client *http.Client, base, method, uri, body string, headers map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+uri, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The enroll routes are Caddy admin routes like /config: what Caddy does
// to keep browsers and other hosts' names out of its admin endpoint holds
// for them, and remote administration's permissions (paths and methods)
// fit them: every read is a GET, every change a POST or DELETE, so that an
// identity granted GET on /enroll/ can read requests, devices and records
// but neither approve, revoke nor purge, nor read Caddy's config (which
// holds the accounts' password hashes).
func TestAdminRoutesUnderCaddysProtections(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	local := "http://" + s.AdminAddr
	for _, c := range []struct {
		name, method, uri, body string
		headers                 map[string]string
		want                    int
	}{
		{"a page of another origin", "POST", "/enroll/revoke", `{"device": "device4.com"}`,
			map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"}, 403},
		{"a no-cors fetch", "POST", "/enroll/revoke", `{"device": "device4.com"}`,
			map[string]string{"Sec-Fetch-Mode": "no-cors", "Content-Type": "text/plain"}, 400},
		{"a name rebound to loopback", "GET", "/enroll/devices", "",
			map[string]string{"Host": "evil.example:" + strings.Split(s.AdminAddr, ":")[1]}, 403},
		{"a form of a browser that sends no Origin", "POST", "/enroll/revoke", `{"device":"=","device":"device4.com"}`,
			map[string]string{"Content-Type": "text/plain"}, 415},
		{"the endpoint's own origin", "GET", "/enroll/devices", "",
			map[string]string{"Origin": local}, 200},
	} {
		if code, body := adminRequest(t, http.DefaultClient, local, c.method, c.uri, c.body, c.headers); code != c.want {
			t.Errorf("%s: %s %s answered %d %s, want %d", c.name, c.method, c.uri, code, body, c.want)
		}
	}

	// remote administration, with two identities: a reader (GET on
	// /enroll/) and an approver (pending and approve only)
	reader, readerDER := clientIdentity(t, "reader")
	approver, approverDER := clientIdentity(t, "approver")
	remoteAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	code, cfgJSON := s.Admin("GET", "/config/", "")
	if code != 200 {
		t.Fatalf("GET /config/: %d %s", code, cfgJSON)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		t.Fatal(err)
	}
	admin, _ := cfg["admin"].(map[string]any)
	if admin == nil {
		t.Fatalf("config without admin: %s", cfgJSON)
	}
	admin["identity"] = map[string]any{"identifiers": []string{"127.0.0.1"}, "issuers": []any{map[string]any{"module": "internal"}}}
	admin["remote"] = map[string]any{"listen": remoteAddr, "access_control": []any{
		map[string]any{"public_keys": []string{readerDER}, "permissions": []any{
			map[string]any{"paths": []string{"/enroll/"}, "methods": []string{"GET"}}}},
		map[string]any{"public_keys": []string{approverDER}, "permissions": []any{
			map[string]any{"paths": []string{"/enroll/pending", "/enroll/approve"}, "methods": []string{"GET", "POST"}}}},
	}}
	b, _ := json.Marshal(cfg)
	if code, body := s.Admin("POST", "/load", string(b)); code != 200 {
		t.Fatalf("loading the config with remote administration: %d %s", code, body)
	}
	remote := "https://" + remoteAddr
	as := func(id tls.Certificate) *http.Client {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.rootPEM())
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{id}}}}
	}
	// the identity certificate is obtained in the background
	waitFor(t, "the remote admin endpoint", func() bool {
		resp, err := as(reader).Get(remote + "/enroll/pending")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})

	_, csr := p256CSR(t, "device4.com")
	if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("status %d", ans.Status)
	}
	code, body := adminRequest(t, as(reader), remote, "GET", "/enroll/pending", "", nil)
	var pending []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &pending); code != 200 || err != nil || len(pending) != 1 {
		t.Fatalf("the reader's GET /enroll/pending: %d %s", code, body)
	}
	id := pending[0].ID
	asJSON := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		who                     string
		client                  *http.Client
		method, uri, body, want string
		code                    int
	}{
		{"reader", as(reader), "GET", "/enroll/devices", "", "device4.com", 200},
		{"reader", as(reader), "GET", "/enroll/requests?state=pending", "", id, 200},
		{"reader", as(reader), "GET", "/enroll/cdrs?format=csv", "", "", 200},
		{"reader", as(reader), "GET", "/enroll/ca", "", "BEGIN CERTIFICATE", 200},
		{"reader", as(reader), "POST", "/enroll/approve/" + id, "{}", "not authorized to use this method", 403},
		{"reader", as(reader), "POST", "/enroll/revoke", `{"device": "device4.com"}`, "not authorized to use this method", 403},
		{"reader", as(reader), "DELETE", "/enroll/cdrs?before=2000-01-01", "", "not authorized to use this method", 403},
		{"reader", as(reader), "GET", "/config/", "", "not authorized to access this path", 403},
		{"approver", as(approver), "GET", "/enroll/devices", "", "not authorized to access this path", 403},
		{"approver", as(approver), "POST", "/enroll/revoke", `{"device": "device4.com"}`, "not authorized to access this path", 403},
		{"approver", as(approver), "POST", "/enroll/approve/" + id, "{}", `"state": "issued"`, 200},
	} {
		code, body := adminRequest(t, c.client, remote, c.method, c.uri, c.body, asJSON)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %s %s answered %d %s, want %d with %q", c.who, c.method, c.uri, code, body, c.code, c.want)
		}
	}
}

// clientIdentity makes a self-signed client certificate named cn, and
// returns it with its DER in base64, as remote administration's
// access_control public_keys take it.
func clientIdentity(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, base64.StdEncoding.EncodeToString(der)
}
