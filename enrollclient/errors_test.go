package enrollclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// hostile is server text meant to drive the operator's terminal: an escape
// sequence clearing the screen and changing the title, a bell, a C1 CSI, a
// bidi override and a byte that is not UTF-8.
const hostile = "denied\x1b[2J\x1b]0;pwned\x07 \u009b31m\u202eevil\xff\r\nnext line\x7f ok é"

// safeOnTerminal reports why s is not safe to print, or "".
func safeOnTerminal(s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e' {
			return fmt.Sprintf("character %U", r)
		}
	}
	return ""
}

func TestServerTextPrintable(t *testing.T) {
	want := `denied\x1b[2J\x1b]0;pwned\a \u009b31m\u202eevil\xff  next line\x7f ok é`
	if got := printable(hostile); got != want {
		t.Fatalf("printable = %q\n          want %q", got, want)
	}
	for name, err := range map[string]error{
		"error=":     &RejectedError{Op: wire.OpRequest, Status: wire.StatusRejected, Reason: hostile},
		"HTTP body":  &httpStatusError{op: wire.OpRequest, code: 500, status: "500 Internal Server Error", body: []byte(hostile)},
		"HTTP 200th": &httpStatusError{op: wire.OpRequest, code: 500, status: "500 Internal Server Error", body: []byte(strings.Repeat("x", 199) + "é")},
		"Location":   &httpStatusError{op: wire.OpRequest, code: 307, status: "307 Temporary Redirect", location: hostile},
	} {
		if why := safeOnTerminal(err.Error()); why != "" {
			t.Errorf("%s: %s in %q", name, why, err.Error())
		}
		if !strings.Contains(err.Error(), "denied") && !strings.Contains(err.Error(), "xxx") {
			t.Errorf("%s: text lost: %q", name, err.Error())
		}
	}

	// through the wire: the server's error= text as Enroll reports it
	srv := enrolltest.New(t, enrolltest.Config{RejectStatus: wire.StatusDeviceDisabled, RejectReason: hostile})
	c := newClient(t, srv, nil)
	_, err := c.Enroll(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Reason != hostile {
		t.Fatalf("err = %#v", err)
	}
	if why := safeOnTerminal(err.Error()); why != "" || !strings.Contains(err.Error(), `denied\x1b[2J`) {
		t.Fatalf("%s in %q", why, err.Error())
	}
}

// The reason phrase of the server's HTTP status line is server text too.
func TestHTTPReasonPhrasePrintable(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 503 Busy\x1b[2J\x1b]0;pwned\x07\u202eevil\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		buf.Flush()
	}))
	defer ts.Close()
	c := &Client{ServerURL: ts.URL + "/", HTTPClient: ts.Client()}
	_, err := c.GetCACert(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if why := safeOnTerminal(err.Error()); why != "" || !strings.Contains(err.Error(), `Busy\x1b[2J`) {
		t.Fatalf("%s in %q", why, err.Error())
	}
}

// A TLS certificate that does not name the server is refused, and the names
// it gives — chosen by whoever answered, before any trust — are escaped in
// the error as the server's other text is.
func TestServerCertificateNamesPrintable(t *testing.T) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impostor"},
		DNSNames:  []string{"evil\x1b[2J\x1b]0;pwned\x07.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	port, root := enrolltest.SelfSignedTLS(t, tmpl)
	c := &Client{ServerURL: "https://localhost:" + port + "/", RootCAPEM: root}
	_, err := c.GetCACert(context.Background())
	if !errors.Is(err, ErrServerNotTrusted) {
		t.Fatalf("err = %v", err)
	}
	if why := safeOnTerminal(err.Error()); why != "" || !strings.Contains(err.Error(), `evil\x1b[2J`) {
		t.Fatalf("%s in %q", why, err.Error())
	}
}

// HostMismatch gives every name of a certificate that does not name the
// server, also those Go's error leaves out (the DNS names when the server
// URL has an IP address, all of them for a certificate relying on its CN).
func TestServerTrustHostMismatch(t *testing.T) {
	leaf := func(cn string, dns []string, ips ...net.IP) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	}
	for name, tc := range map[string]struct {
		cert      *x509.Certificate
		host      string
		goSays    string
		names     []string
		cn        string
		otherRoot bool
	}{
		"DNS host": {cert: leaf("wrong", []string{"wrong.example"}, net.ParseIP("192.0.2.7")), host: "localhost",
			goSays: "certificate is valid for wrong.example, not localhost", names: []string{"wrong.example", "192.0.2.7"}, cn: "wrong"},
		"IP host, no IP SANs": {cert: leaf("", []string{"wrong.example", "also.example"}), host: "127.0.0.1",
			goSays: "doesn't contain any IP SANs", names: []string{"wrong.example", "also.example"}},
		"CN only": {cert: leaf("localhost", nil), host: "localhost", goSays: "legacy Common Name", cn: "localhost"},
		"unknown authority": {cert: leaf("", []string{"localhost"}), host: "localhost", otherRoot: true,
			goSays: "unknown authority"},
	} {
		t.Run(name, func(t *testing.T) {
			port, root := enrolltest.SelfSignedTLS(t, tc.cert)
			if tc.otherRoot {
				other, _, err := enrolltest.NewCA("Other Root")
				if err != nil {
					t.Fatal(err)
				}
				root = certPEM(other.Raw)
			}
			c := &Client{ServerURL: "https://" + net.JoinHostPort(tc.host, port) + "/", RootCAPEM: root}
			_, err := c.GetCACert(context.Background())
			var te *ServerTrustError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.goSays) {
				t.Fatalf("err = %v", err)
			}
			host, names, cn, ok := te.HostMismatch()
			if tc.otherRoot {
				if ok {
					t.Fatalf("HostMismatch of an unknown authority: %q %q", host, names)
				}
				return
			}
			if !ok || host != tc.host || strings.Join(names, " ") != strings.Join(tc.names, " ") || cn != tc.cn {
				t.Fatalf("HostMismatch = %q %q %q %v, want %q %q %q", host, names, cn, ok, tc.host, tc.names, tc.cn)
			}
		})
	}
}

// An answer over wire.MaxBody is read only up to MaxBody+1 bytes: the
// error says it is larger than the limit, not that it had MaxBody+1 bytes.
func TestOversizedAnswer(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "status=0&certificate=")
		w.Write(bytes.Repeat([]byte("A"), 1<<20))
	}))
	defer ts.Close()
	c := &Client{ServerURL: ts.URL + "/", HTTPClient: ts.Client()}
	_, err := c.GetCACert(context.Background())
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "larger than 65536 bytes") ||
		strings.Contains(err.Error(), "65537") {
		t.Fatalf("err = %v", err)
	}
}

// A refusal names its status's meaning from the protocol's table, and says
// so when the status is not in it (it printed "status 99 (status 99)").
func TestRejectedErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  *RejectedError
		want string
	}{
		{&RejectedError{Op: wire.OpRequest, Status: wire.StatusRejected}, "server refused request: status 8 (rejected)"},
		{&RejectedError{Op: wire.OpRequest, Status: 99}, "server refused request: status 99 (not in the protocol's table)"},
		{&RejectedError{Op: wire.OpRetrieve, Status: 99, Reason: "later"}, "server refused retrieve: status 99 (not in the protocol's table): later"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
