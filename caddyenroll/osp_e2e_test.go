package caddyenroll_test

// Call authorization over OSP through a real Caddy, over mutual TLS with
// the certificates devices got by enrollment.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

type ospServer struct {
	*server
	ospURL   string
	plainURL string // OSP over plain HTTP, without plain_http
}

func startOSPServer(t *testing.T) *ospServer {
	t.Helper()
	ospAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	plainAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	// No host in the site address: gateways connect to an IP address without
	// SNI, and a TLS connection policy bound to a server name would not
	// apply to them; the certificate is the one Caddy manages for 127.0.0.1.
	site := mtlsOSPSite(ospAddr) + fmt.Sprintf(`
http://%s {
	bind 127.0.0.1
	osp {
		source_address 127.0.0.1 device4.carrier.com
	}
}`, plainAddr)
	s := startServer(t, serverOpts{sites: site, waitAddrs: []string{ospAddr, plainAddr}})
	return &ospServer{server: s, ospURL: "https://" + ospAddr + "/osp", plainURL: "http://" + plainAddr + "/osp"}
}

// mtlsOSPSite is a site serving OSP at addr's port to devices identified
// by their client certificates from the operational CA.
func mtlsOSPSite(addr string) string {
	return fmt.Sprintf(`https://:%s {
	bind 127.0.0.1
	tls {
		client_auth {
			mode verify_if_given
			trust_pool enroll modern
		}
	}
	osp {
		token_validity 30s
	}
}`, addr[strings.LastIndex(addr, ":")+1:])
}

// enrolledDevice enrolls a device through the real server and returns an
// HTTPS client presenting its certificate, the certificate and the key.
func (s *ospServer) enrolledDevice(name string) (*http.Client, *x509.Certificate, crypto.Signer) {
	s.t.Helper()
	key, csr := p256CSR(s.t, name)
	ans := s.do(enrollReq(wire.OpRequest, s.t, csr))
	if ans.Status != wire.StatusOK {
		s.t.Fatalf("enrolling %s: status %d %s", name, ans.Status, ans.Error)
	}
	cert, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.clientWith(tls.Certificate{Certificate: [][]byte{ans.Certificate}, PrivateKey: key, Leaf: cert}), cert, key
}

func (s *ospServer) clientWith(cert tls.Certificate) *http.Client {
	tr := s.client.Transport.(*http.Transport).Clone()
	// present the certificate whatever CAs the server names (a device
	// with one certificate does; Go's default would send none for a
	// foreign one)
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

func authRequest(called string, maxDest int) []byte {
	req := &osp.AuthorizationRequest{
		MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs:         [][]byte{[]byte("call-" + called)},
		SourceInfo:      []osp.Info{{Type: "e164", Value: "14048724799"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: called}},
		MaxDestinations: maxDest,
	}
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func (s *ospServer) ask(c *http.Client, body []byte) []byte {
	s.t.Helper()
	resp, err := c.Post(s.ospURL, "text/plain", bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("POST %s: %v", s.ospURL, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(out)) || len(resp.TransferEncoding) > 0 {
		s.t.Fatalf("OSP answer: HTTP %d, Content-Length %d for %d bytes, %v\n%s", resp.StatusCode, resp.ContentLength, len(out), resp.TransferEncoding, out)
	}
	return out
}

func (s *ospServer) authorize(c *http.Client, called string) *osp.AuthorisationResponse {
	s.t.Helper()
	rsp, err := osp.ParseAuthorisationResponse(s.ask(c, authRequest(called, 5)))
	if err != nil {
		s.t.Fatal(err)
	}
	return rsp
}

func (s *ospServer) editConf(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("configuration file lacks %q", from)
	}
	if err := os.WriteFile(s.conf, bytes.Replace(b, []byte(from), []byte(to), 1), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestOSPAuthorizationOverMutualTLS(t *testing.T) {
	s := startOSPServer(t)
	caCert := s.getCACert()
	origin, originCert, originKey := s.enrolledDevice("device4.carrier.com") // group BT-Concert
	terminating, _, _ := s.enrolledDevice("device1.itsp.com")

	// BT-Concert '+1 404...': device1 75, device2 25, device4.carrier.com 0 (the source)
	first := map[string]int{}
	const calls = 200
	var sample *osp.AuthorisationResponse
	for i := 0; i < calls; i++ {
		rsp := s.authorize(origin, "+1 404 555 0100")
		if rsp.Status.Code != 200 || len(rsp.Destinations) != 2 {
			t.Fatalf("call %d: status %v, %d destinations", i, rsp.Status, len(rsp.Destinations))
		}
		first[rsp.Destinations[0].NetworkID]++
		if rsp.Destinations[0].NetworkID == "device1.itsp.com" {
			sample = rsp
		}
	}
	share := float64(first["device1.itsp.com"]) / calls
	if share < 0.62 || share > 0.88 || first["device1.itsp.com"]+first["device2.itsp.com"] != calls {
		t.Fatalf("first destinations %v: device1 share %.2f, want about 0.75", first, share)
	}

	// the terminating device checks the token with the Go verifier
	dest := sample.Destinations[0]
	if dest.SignalAddress != "device1.itsp.com:5060" {
		t.Fatalf("signal address %q", dest.SignalAddress)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	v := &osp.Verifier{Roots: roots, Replay: osp.NewReplayCache(1000)}
	call := osp.Call{Calling: "14048724799", Called: "+1 404 555 0100", CallID: []byte("call-+1 404 555 0100"), Destination: dest.SignalAddress}
	info, err := v.Verify(dest.Token, call)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if info.TransactionID != sample.TransactionID {
		t.Fatalf("token transaction %d, answer %d", info.TransactionID, sample.TransactionID)
	}
	if _, err := v.Verify(dest.Token, call); !errors.Is(err, osp.ErrTokenReplay) {
		t.Fatalf("replayed token: %v", err)
	}
	wrong := call
	wrong.Called = "14045550199"
	if _, err := (&osp.Verifier{Roots: roots}).Verify(sample.Destinations[1].Token, wrong); !errors.Is(err, osp.ErrTokenMismatch) {
		t.Fatalf("token for another number: %v", err)
	}

	// reauthorization: a fresh token for the destination and transaction of
	// a token of the call this server issued, never for one the request
	// names, nor on a token of the requester's own making
	reauthReq := func(mod func(*osp.ReauthorizationRequest)) *osp.ReauthorizationRequest {
		r := &osp.ReauthorizationRequest{MessageID: "5", ComponentID: "6", Timestamp: time.Now().UTC(),
			Role: "source", CallID: call.CallID, TransactionID: sample.TransactionID, Duration: 30 * time.Second,
			SourceInfo:      []osp.Info{{Type: "e164", Value: "14048724799"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "+1 404 555 0100"}},
			Tokens:          [][]byte{dest.Token}}
		if mod != nil {
			mod(r)
		}
		return r
	}
	reauth := func(r *osp.ReauthorizationRequest) *osp.ReauthorizationResponse {
		t.Helper()
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rsp, err := osp.ParseReauthorizationResponse(s.ask(origin, b))
		if err != nil {
			t.Fatal(err)
		}
		return rsp
	}
	tokenInfo, err := (&osp.Verifier{Roots: roots, Skew: time.Hour}).Verify(dest.Token, call)
	if err != nil {
		t.Fatal(err)
	}
	// the origin device signs a token of its own for the call, to device2,
	// with the key of its certificate from the same CA
	forged := *tokenInfo
	forged.SignalAddress, forged.NetworkID = "device2.itsp.com:5060", "device2.itsp.com"
	forgedXML, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	byDevice, err := (&osp.TokenSigner{Cert: originCert, Key: originKey}).Sign(forgedXML)
	if err != nil {
		t.Fatal(err)
	}
	alternate := func(addr string) func(*osp.ReauthorizationRequest) {
		return func(r *osp.ReauthorizationRequest) {
			r.DestinationAlternate = []osp.Info{{Type: "transport", Value: addr}}
		}
	}
	for _, c := range []struct {
		name string
		mod  func(*osp.ReauthorizationRequest)
		code int
		to   string // the destination of the fresh token
	}{
		{"as the toolkit sends it", nil, 200, dest.SignalAddress},
		{"naming the token's destination", alternate(dest.SignalAddress), 200, dest.SignalAddress},
		{"the call's other token", func(r *osp.ReauthorizationRequest) {
			r.Tokens = [][]byte{sample.Destinations[1].Token}
		}, 200, sample.Destinations[1].SignalAddress},
		{"naming another device", alternate("device2.itsp.com:5060"), 489, ""},
		{"naming no device", alternate("[10.9.9.9]:5060"), 489, ""},
		{"without a token", func(r *osp.ReauthorizationRequest) { r.Tokens = nil }, 401, ""},
		{"another transaction", func(r *osp.ReauthorizationRequest) { r.TransactionID++ }, 401, ""},
		{"another called number", func(r *osp.ReauthorizationRequest) {
			r.DestinationInfo = []osp.Info{{Type: "e164", Value: "+1 404 555 0101"}}
		}, 401, ""},
		{"another call id", func(r *osp.ReauthorizationRequest) { r.CallID = []byte("call-2") }, 401, ""},
		{"a token signed by a device", func(r *osp.ReauthorizationRequest) { r.Tokens = [][]byte{byDevice} }, 401, ""},
		{"an unsigned token", func(r *osp.ReauthorizationRequest) { r.Tokens = [][]byte{forgedXML} }, 401, ""},
	} {
		rsp := reauth(reauthReq(c.mod))
		if rsp.Status.Code != c.code {
			t.Errorf("reauthorization %s: %+v", c.name, rsp.Status)
			continue
		}
		if c.code != 200 {
			if rsp.Destination != nil {
				t.Errorf("reauthorization %s: refused with a destination", c.name)
			}
			continue
		}
		d := rsp.Destination
		if rsp.TransactionID != sample.TransactionID || d == nil || d.SignalAddress != c.to {
			t.Errorf("reauthorization %s: %+v %+v", c.name, rsp, d)
			continue
		}
		fresh := call
		fresh.Destination = c.to
		if info, err := (&osp.Verifier{Roots: roots}).Verify(d.Token, fresh); err != nil || info.TransactionID != sample.TransactionID {
			t.Errorf("reauthorization %s: token %v", c.name, err)
		}
	}

	// the terminating device, which received the token with the call,
	// cannot extend it: the transaction is the origin's
	if b, err := reauthReq(nil).Marshal(); err != nil {
		t.Fatal(err)
	} else if rsp, err := osp.ParseReauthorizationResponse(s.ask(terminating, b)); err != nil || rsp.Status.Code != 401 || rsp.Destination != nil {
		t.Errorf("reauthorization by the terminating device: %+v %v, want 401", rsp, err)
	}

	// usage from both ends is stored once per role
	usageOf := func(role string, tx uint64) []byte {
		ind := &osp.UsageIndication{MessageID: "7", Usages: []osp.Usage{{
			ComponentID: "8", Timestamp: time.Now().UTC(), Role: role, TransactionID: tx,
			CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "14048724799"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "14045550100"}}, Duration: 42 * time.Second,
			StartTime: time.Now().UTC().Add(-time.Minute), EndTime: time.Now().UTC(),
		}}}
		b, err := ind.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	usage := func(role string) []byte { return usageOf(role, sample.TransactionID) }
	for _, c := range []struct {
		client *http.Client
		role   string
	}{{origin, "source"}, {origin, "source"}, {terminating, "destination"}} {
		cnf, err := osp.ParseUsageConfirmation(s.ask(c.client, usage(c.role)))
		if err != nil || len(cnf.Confirmations) != 1 || cnf.Confirmations[0].Status.Code != 200 {
			t.Fatalf("usage confirmation: %+v %v", cnf, err)
		}
	}
	_, body := s.Admin("GET", "/enroll/cdrs", "")
	var cdrs []struct {
		TransactionID uint64    `json:"transaction_id,string"`
		Role          string    `json:"role"`
		Reporter      string    `json:"reporter"`
		Duration      float64   `json:"duration_seconds"`
		Received      time.Time `json:"received"`
		Issued        *bool     `json:"transaction_issued"`
		Source        string    `json:"transaction_source"`
	}
	if err := json.Unmarshal([]byte(body), &cdrs); err != nil || len(cdrs) != 2 {
		t.Fatalf("CDRs (want one per role): %v %s", err, body)
	}
	for _, c := range cdrs {
		// both name the source of the call, whoever reports it
		if c.TransactionID != sample.TransactionID || c.Duration != 42 || c.Issued == nil || !*c.Issued || c.Source != "device4.carrier.com" {
			t.Fatalf("CDR %+v", c)
		}
	}
	_, csvBody := s.Admin("GET", "/enroll/cdrs?format=csv", "")
	if lines := strings.Split(strings.TrimSpace(csvBody), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "transaction_id,role,reporter") {
		t.Fatalf("CSV export:\n%s", csvBody)
	}

	// Records are kept in UTC day buckets: a period is exported, and days are
	// purged, through the admin API and the CLI. A record of the flat layout
	// of earlier versions is exported and purged by its Received.
	legacy := `{"transaction_id":7,"role":"source","reporter":"old.example","received":"2020-01-02T10:00:00Z"}`
	if err := os.WriteFile(filepath.Join(s.Dir, "data", "clearinghouse", "cdrs", "7-source-0123456789ab.json"), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	firstDay, lastDay := day(cdrs[0].Received), day(cdrs[1].Received) // the same day unless the test ran over midnight
	onFirstDay := 1
	if lastDay == firstDay {
		onFirstDay = 2
	}
	count := func(query string) int {
		t.Helper()
		code, body := s.Admin("GET", "/enroll/cdrs"+query, "")
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
			t.Fatalf("GET /enroll/cdrs%s: %d %v %s", query, code, err, body)
		}
		return len(list)
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"", 3},
		{"?since=" + firstDay + "&until=" + lastDay, 2},
		{"?until=" + firstDay, onFirstDay + 1}, // with the flat record
		{"?since=2020-01-01&until=2020-01-31", 1},
		{"?since=" + day(cdrs[1].Received.AddDate(0, 0, 1)), 0},
	} {
		if got := count(c.query); got != c.want {
			t.Errorf("GET /enroll/cdrs%s: %d records, want %d", c.query, got, c.want)
		}
	}
	out, errOut, code := runCaddy(t, s.Dir, "enroll", "cdrs", "--since", firstDay, "--until", lastDay, "--format", "csv", "--address", s.AdminAddr)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], fmt.Sprint(sample.TransactionID)+",") {
		t.Errorf("caddy enroll cdrs --since %s --until %s: exit %d\n%s%s", firstDay, lastDay, code, out, errOut)
	}
	if out, errOut, code := runCaddy(t, s.Dir, "enroll", "cdrs", "--since", "2020-01-02", "--until", "2020-01-01", "--address", s.AdminAddr); code == 0 ||
		!strings.Contains(out+errOut, "since 2020-01-02 is after until 2020-01-01") {
		t.Errorf("an empty range: exit %d\n%s%s", code, out, errOut)
	}
	// a purge of days to come is refused and deletes nothing
	if code, body := s.Admin("DELETE", "/enroll/cdrs?before="+day(time.Now().AddDate(0, 0, 3)), ""); code != 400 || !strings.Contains(body, "later than tomorrow") {
		t.Errorf("purge before the day after tomorrow: %d %s", code, body)
	}
	if code, body := s.Admin("DELETE", "/enroll/cdrs", ""); code != 400 || !strings.Contains(body, "before is required") {
		t.Errorf("purge without before: %d %s", code, body)
	}
	if got := count(""); got != 3 {
		t.Errorf("%d records after refused purges, want 3", got)
	}
	var purged struct {
		Days   []string `json:"deleted_days"`
		Legacy int      `json:"deleted_legacy_records"`
	}
	if code, body := s.Admin("DELETE", "/enroll/cdrs?before=2020-02-01", ""); code != 200 ||
		json.Unmarshal([]byte(body), &purged) != nil || purged.Days == nil || len(purged.Days) != 0 || purged.Legacy != 1 {
		t.Errorf("purge of the flat record: %d %s", code, body)
	}
	next := day(cdrs[1].Received.AddDate(0, 0, 1)) // at most tomorrow
	out, errOut, code = runCaddy(t, s.Dir, "enroll", "cdrs", "purge", "--before", next, "--address", s.AdminAddr)
	if code != 0 || json.Unmarshal([]byte(out), &purged) != nil || len(purged.Days) == 0 ||
		purged.Days[0] != firstDay || purged.Days[len(purged.Days)-1] != lastDay || purged.Legacy != 0 {
		t.Errorf("caddy enroll cdrs purge --before %s: exit %d\n%s%s", next, code, out, errOut)
	}
	if got := count(""); got != 0 {
		t.Errorf("%d records left after the purge", got)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "clearinghouse", "cdrs", lastDay)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bucket %s still in storage: %v", lastDay, err)
	}
	// usage for a transaction no authorization here made is stored, and
	// says so
	if cnf, err := osp.ParseUsageConfirmation(s.ask(origin, usageOf("source", sample.TransactionID^1))); err != nil ||
		len(cnf.Confirmations) != 1 || cnf.Confirmations[0].Status.Code != 200 {
		t.Fatalf("usage of a made-up transaction: %+v %v", cnf, err)
	}
	_, body = s.Admin("GET", "/enroll/cdrs", "")
	if err := json.Unmarshal([]byte(body), &cdrs); err != nil || len(cdrs) != 1 || cdrs[0].Issued == nil || *cdrs[0].Issued {
		t.Errorf("the record of a made-up transaction: %v %s", err, body)
	}
	_, csvBody = s.Admin("GET", "/enroll/cdrs?format=csv", "")
	if rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll(); err != nil || len(rows) != 2 ||
		len(rows[1]) != len(rows[0]) || rows[1][slices.Index(rows[0], "transaction_issued")] != "false" {
		t.Errorf("CSV of a made-up transaction (%v):\n%s", err, csvBody)
	}
	if out, errOut, code := runCaddy(t, s.Dir, "enroll", "cdrs", "purge", "--address", s.AdminAddr); code == 0 {
		t.Errorf("caddy enroll cdrs purge without --before: exit 0\n%s%s", out, errOut)
	}
	if out, errOut, code := runCaddy(t, s.Dir, "enroll", "cdrs", "purg", "--address", s.AdminAddr); code == 0 {
		t.Errorf("caddy enroll cdrs purg (a typo): exit 0\n%s%s", out, errOut)
	}

	// refusals, each with its OSP status
	expectStatus := func(what string, c *http.Client, want int) {
		t.Helper()
		waitFor(t, what, func() bool { return s.authorize(c, "14045550100").Status.Code == want })
	}
	// a client certificate of another CA does not pass client_auth
	if _, err := s.clientWith(selfSigned(t, "device4.carrier.com")).Post(s.ospURL, "text/plain", bytes.NewReader(authRequest("1678", 1))); err == nil {
		t.Fatal("a foreign client certificate was accepted")
	}
	// plain HTTP under `ssl enabled`, without plain_http: security problem
	resp, err := http.Post(s.plainURL, "text/plain", bytes.NewReader(authRequest("1678", 1)))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rsp, err := osp.ParseAuthorisationResponse(plain); err != nil || rsp.Status.Code != 420 {
		t.Fatalf("OSP over plain HTTP: %v %s", err, plain)
	}
	// malformed and oversized messages are refused at the HTTP level
	for _, c := range []struct {
		body []byte
		want int
	}{
		{[]byte("<Message><Authorization"), http.StatusBadRequest},
		{[]byte("not xml at all"), http.StatusBadRequest},
		{[]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><Message/>`), http.StatusBadRequest},
		{bytes.Repeat([]byte("<a>"), osp.DefaultLimits.MaxBytes/3+1), http.StatusRequestEntityTooLarge},
	} {
		resp, err := origin.Post(s.ospURL, "text/plain", bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%.30q: HTTP %d, want %d", c.body, resp.StatusCode, c.want)
		}
	}
	// no client certificate, no source mapping: not authorized
	expectStatus("no certificate", s.client, 401)
	// routing disabled
	s.editConf(t, "routing enabled", "routing disabled")
	expectStatus("routing disabled", origin, 503)
	s.editConf(t, "routing disabled", "routing enabled")
	expectStatus("routing enabled again", origin, 200)
	// the terminating device disabled: its certificate is revoked, it is
	// no destination any more, and a call to it is not extended
	s.editConf(t, "'device1.itsp.com' 'ACME ITSP' enabled enrolled", "'device1.itsp.com' 'ACME ITSP' disabled enrolled")
	expectStatus("disabled device", terminating, 401)
	waitFor(t, "reauthorization to a disabled device", func() bool { return reauth(reauthReq(nil)).Status.Code == 404 })
	if rsp := reauth(reauthReq(func(r *osp.ReauthorizationRequest) { r.Tokens = [][]byte{sample.Destinations[1].Token} })); rsp.Status.Code != 200 {
		t.Fatalf("reauthorization to device2: %+v", rsp.Status)
	}
	// the source is no longer marked enrolled
	s.editConf(t, "'device4.carrier.com' 'BT-Concert' enabled enrolled", "'device4.carrier.com' 'BT-Concert' enabled")
	expectStatus("unenrolled source", origin, 401)
	if rsp := reauth(reauthReq(func(r *osp.ReauthorizationRequest) { r.Tokens = [][]byte{sample.Destinations[1].Token} })); rsp.Status.Code != 401 {
		t.Fatalf("reauthorization by an unenrolled source: %+v", rsp.Status)
	}
}

// selfSigned makes a client certificate no clearinghouse issued.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: crypto.Signer(key)}
}

// A source address is the connection's, never X-Forwarded-For, even from a
// trusted proxy: a host behind it could name another gateway's address.
func TestOSPSourceAddressIgnoresForwardedFor(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	site := fmt.Sprintf(`http://%s {
	bind 127.0.0.1
	osp {
		source_address 192.0.2.10 device4.carrier.com
		plain_http
	}
}`, addr)
	startServer(t, serverOpts{sites: site, waitAddrs: []string{addr},
		servers: "trusted_proxies static 127.0.0.1/32"})
	post := func(forwarded string) *osp.AuthorisationResponse {
		req, _ := http.NewRequest("POST", "http://"+addr+"/osp", bytes.NewReader(authRequest("1678", 5)))
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		rsp, err := osp.ParseAuthorisationResponse(body)
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		return rsp
	}
	// the peer, 127.0.0.1, is no device: refused; naming device4's
	// address in the header changes nothing
	for _, fwd := range []string{"", "192.0.2.10"} {
		if rsp := post(fwd); rsp.Status.Code != 401 {
			t.Errorf("X-Forwarded-For %q: status %d, want 401 (the peer is no device)", fwd, rsp.Status.Code)
		}
	}
}
