package enrollclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Defaults of the Client's zero-valued options.
const (
	DefaultInitialBackoff = 2 * time.Second
	DefaultMaxBackoff     = 60 * time.Second
	DefaultMaxWait        = 10 * time.Minute
	DefaultRenewWindow    = 1.0 / 3 // last third of the certificate's lifetime
	DefaultHTTPTimeout    = 60 * time.Second
)

// UserAgent is sent with every request.
const UserAgent = "chclient/1 (caddy-clearinghouse enrollclient)"

// Client enrolls one device with a clearinghouse enrollment server and keeps
// its key and certificates in Dir. Set the fields, then call its methods; a
// Client must not be used by two goroutines at once (methods that write Dir
// also take a lock file there, so two processes do not interleave either).
type Client struct {
	// ServerURL is the enrollment URL (e.g. "https://enroll.example.com/");
	// every message is POSTed to it. http:// is refused unless AllowHTTP.
	ServerURL string
	// AllowHTTP permits an http:// ServerURL (tests, lab networks): the
	// server's identity then rests on nothing.
	AllowHTTP bool
	// RootCAPEM, when set, is the only trust anchor for the server's TLS
	// certificate (the operator-given third-party root of claim 1); when
	// nil the system roots are used. Ignored when HTTPClient is set.
	RootCAPEM []byte
	// HTTPClient overrides the HTTP client (tests: httptest.Server.Client()).
	// When nil, a client verifying TLS against RootCAPEM or the system roots
	// is built, HTTP/1.1 only (the seed's transport), with DefaultHTTPTimeout.
	// Either way the Client's redirect policy replaces CheckRedirect:
	// request and retrieve, which carry the password, are never redirected;
	// getcacert follows up to 3 redirects (307, 308: the POST kept) to the
	// same scheme, host and port.
	HTTPClient *http.Client

	// CAFingerprint pins the CA certificate returned by getcacert: its
	// SHA-256, hex, colons optional, any case (Fig. 3B step 340 automated).
	CAFingerprint string
	// TrustOnFirstUse accepts an unpinned CA certificate. Later runs pin the
	// CA saved in Dir.
	TrustOnFirstUse bool
	// Confirm is asked about an unpinned CA certificate when
	// TrustOnFirstUse is off (the command asks on a terminal).
	Confirm func(fingerprint string, cert *x509.Certificate) bool

	DeviceName string // the device's DNS name (or IP address): CSR subject CN and SAN
	DeviceID   string // clearinghouse-assigned device id (digits), `device=`
	Customer   string // clearinghouse-assigned customer id (digits), `customer=`
	Username   string // `username=`
	Password   string // `password=`
	// CSRField is the variable the CSR travels in: wire.CSRFieldRequest
	// ("request", Table 4 and the OSP Toolkit; default) or
	// wire.CSRFieldCertReq ("certreq", Table 1).
	CSRField string
	// KeyType is the algorithm of new keys: default KeyP256 for Enroll;
	// for Renew, the type of the key it replaces.
	KeyType KeyType

	// Dir holds key.pem, cert.pem, ca.pem and pending.json (default ".").
	Dir string

	InitialBackoff time.Duration // first wait between polls (default 2s), doubling
	MaxBackoff     time.Duration // longest wait between polls (default 60s)
	// MaxWait is the total time to wait for approval (default 10m), after
	// which ErrPendingTimeout; negative: send one message and do not wait.
	MaxWait time.Duration
	// Progress is called before each wait while polling: attempt is the
	// number of the retrieve about to be sent (1, 2, …), next the wait
	// before it, lastErr nil when the server's last answer was pending, else
	// why the last retrieve failed (the server could not be reached, an
	// HTTP 5xx, a temporary refusal), to be tried again.
	Progress func(attempt int, next time.Duration, lastErr error)

	// RenewWindow is the fraction of the certificate's lifetime before
	// expiry in which Renew re-enrolls (default 1/3: the last third).
	RenewWindow float64

	// test hooks
	nowFunc   func() time.Time
	nonceFunc func() ([]byte, error)
	csrFunc   func(key crypto.Signer, name string) ([]byte, error)
	sleep     func(ctx context.Context, d time.Duration) error
}

func (c *Client) now() time.Time {
	if c.nowFunc != nil {
		return c.nowFunc()
	}
	return time.Now()
}

func (c *Client) dir() string {
	if c.Dir == "" {
		return "."
	}
	return c.Dir
}

func (c *Client) csrField() string {
	if c.CSRField == "" {
		return wire.CSRFieldRequest
	}
	return c.CSRField
}

func (c *Client) renewWindow() float64 {
	if c.RenewWindow == 0 {
		return DefaultRenewWindow
	}
	return c.RenewWindow
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// checkServer validates ServerURL (and AllowHTTP).
func (c *Client) checkServer() error {
	if c.ServerURL == "" {
		return configErr("server URL is required")
	}
	u, err := url.Parse(c.ServerURL)
	if err != nil || u.Host == "" {
		return configErr("server URL %q is not an absolute URL", c.ServerURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !c.AllowHTTP {
			return fmt.Errorf("%w: %s: the server's identity must rest on TLS (claim 1); use https:// or allow plain HTTP explicitly", ErrHTTPNotAllowed, c.ServerURL)
		}
	default:
		return configErr("server URL %q: scheme must be https", c.ServerURL)
	}
	if u.User != nil {
		return configErr("server URL must not carry credentials")
	}
	return nil
}

// checkEnroll validates what a request/retrieve needs.
func (c *Client) checkEnroll() error {
	if err := c.checkServer(); err != nil {
		return err
	}
	if err := checkDeviceName(c.DeviceName); err != nil {
		return err
	}
	if c.CAFingerprint != "" {
		if _, err := ParseFingerprint(c.CAFingerprint); err != nil {
			return err
		}
	}
	switch c.csrField() {
	case wire.CSRFieldRequest, wire.CSRFieldCertReq:
	default:
		return configErr("CSR field must be %q or %q", wire.CSRFieldRequest, wire.CSRFieldCertReq)
	}
	if _, err := ParseKeyType(string(c.KeyType)); err != nil {
		return err
	}
	if w := c.RenewWindow; w < 0 || w > 1 {
		return configErr("renew window %v is not a fraction in (0, 1]", w)
	}
	// The server refuses request/retrieve without these (wire.Validate);
	// check locally so that the operator sees which.
	r := wire.Request{Operation: wire.OpRequest, Username: c.Username, Password: c.Password,
		Device: c.DeviceID, Customer: c.Customer, CSR: []byte{0x30}, CSRField: c.csrField()}
	for _, f := range []struct{ name, v string }{{"username", c.Username}, {"password", c.Password},
		{"device id", c.DeviceID}, {"customer id", c.Customer}} {
		if f.v == "" {
			return configErr("%s is required", f.name)
		}
	}
	if err := r.Validate(); err != nil {
		return configErr("%v", err)
	}
	return nil
}

func (c *Client) httpClient() (*http.Client, error) {
	if c.HTTPClient != nil {
		return c.HTTPClient, nil
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.RootCAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.RootCAPEM) {
			return nil, configErr("root CA file holds no PEM certificate")
		}
		tcfg.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tcfg
	p := new(http.Protocols)
	p.SetHTTP1(true) // the seed's messages are HTTP/1.1 POSTs
	t.Protocols = p
	return &http.Client{Transport: t, Timeout: DefaultHTTPTimeout}, nil
}

// redirectPolicy is the CheckRedirect of every exchange. The seed's
// protocol has no redirects, and Go would re-send a request's body — the
// username and password — to the new location (307, 308): request and
// retrieve are never redirected. getcacert carries nothing and its answer
// is pinned by fingerprint; it follows up to 3 redirects that keep the
// scheme, host and port of the server URL, and the POST: 307 and 308 (Go
// would follow a 301, 302 or 303 with a GET without the body, which is
// no getcacert). A redirect not followed ends the exchange with the 3xx
// answer (an *httpStatusError naming where it pointed).
func redirectPolicy(op string) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		// via holds the requests sent so far: the first redirect is
		// asked about with len(via) == 1, the 3rd with 3.
		if op != wire.OpGetCACert || len(via) > maxRedirects || !sameOrigin(req.URL, via[0].URL) || req.Method != via[0].Method {
			return http.ErrUseLastResponse
		}
		return nil
	}
}

// maxRedirects is how many redirects getcacert follows.
const maxRedirects = 3

// sameOrigin reports whether two URLs have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

func (c *Client) newNonce() ([]byte, error) {
	if c.nonceFunc != nil {
		return c.nonceFunc()
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	// 128 random bits as 32 upper-case hex digits: alphanumeric, so it goes
	// on the wire unescaped like the seed's Table 4 nonce.
	return []byte(strings.ToUpper(hex.EncodeToString(b[:]))), nil
}

// exchange POSTs one message and decodes the answer. Only a transport or
// protocol failure is an error; any status is returned in the Response.
func (c *Client) exchange(ctx context.Context, r wire.Request) (*wire.Response, error) {
	if err := c.checkServer(); err != nil {
		return nil, err
	}
	base, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	hc := *base
	hc.CheckRedirect = redirectPolicy(r.Operation)
	if c.HTTPClient == nil {
		// The transport was built for this exchange alone: a connection
		// left idle in it would never be reused, only held open (on the
		// server too) until its idle timeout. Runs after the body is
		// closed below.
		defer hc.CloseIdleConnections()
	}
	body := wire.EncodeRequest(r)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ServerURL, bytes.NewReader(body))
	if err != nil {
		return nil, configErr("server URL: %v", err)
	}
	req.Header.Set("Content-Type", wire.RequestContentType(r.Operation))
	req.Header.Set("User-Agent", UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classifyTransport(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading answer: %w", r.Operation, err)
	}
	if resp.StatusCode != http.StatusOK {
		he := &httpStatusError{op: r.Operation, code: resp.StatusCode, status: resp.Status, body: data}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			he.location = resp.Header.Get("Location")
			if u, err := resp.Location(); err == nil {
				he.location = u.Redacted()
				same := r.Operation == wire.OpGetCACert && sameOrigin(u, req.URL)
				he.tooMany = same && keepsMethod(resp.StatusCode)
				he.changesMethod = same && !keepsMethod(resp.StatusCode)
			}
		}
		return nil, he
	}
	if len(data) > wire.MaxBody { // only MaxBody+1 bytes were read
		return nil, fmt.Errorf("%w: %s: answer larger than %d bytes", ErrProtocol, r.Operation, wire.MaxBody)
	}
	ans, err := wire.DecodeResponse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: undecodable answer: %s", ErrProtocol, r.Operation, printable(err.Error()))
	}
	return ans, nil
}

type httpStatusError struct {
	op       string
	code     int
	status   string // the status line's code and reason phrase, as sent (Error escapes it)
	body     []byte
	location string // a redirect's Location, resolved when it parses
	tooMany  bool   // a getcacert redirect on the server's origin, past maxRedirects
	// changesMethod: a getcacert redirect on the server's origin that
	// would be followed with a GET (301, 302, 303)
	changesMethod bool
}

// keepsMethod reports whether a redirect with this HTTP status is
// followed with the same method and body (307, 308).
func keepsMethod(code int) bool {
	return code == http.StatusTemporaryRedirect || code == http.StatusPermanentRedirect
}

func (e *httpStatusError) Error() string {
	if e.code >= 300 && e.code < 400 {
		s := fmt.Sprintf("%s: server answered HTTP %s, a redirect", e.op, printable(e.status))
		if e.location != "" {
			s += " to " + printable(e.location)
		}
		if e.changesMethod {
			return s + "; not followed: it would turn the POST into a GET without the getcacert; getcacert follows only 307 and 308 " +
				"redirects on the server URL's scheme, host and port (set the server URL to the enrollment endpoint itself)"
		}
		if e.tooMany {
			return s + fmt.Sprintf("; not followed: more than %d redirects (set the server URL to the enrollment endpoint itself)", maxRedirects)
		}
		if e.op == wire.OpGetCACert {
			return s + "; not followed: getcacert follows only redirects that keep the server URL's scheme, host and port (set it to the enrollment endpoint itself)"
		}
		return s + "; not followed: " + e.op + " carries the password and is sent to the server URL only (set it to the enrollment endpoint itself)"
	}
	s := fmt.Sprintf("%s: server answered HTTP %s, not 200 (is the server URL the enrollment endpoint?)", e.op, printable(e.status))
	if len(e.body) > 0 {
		b := e.body
		if len(b) > 200 {
			b = b[:200]
		}
		s += ": " + printable(strings.TrimSpace(string(b)))
	}
	return s
}

func (e *httpStatusError) Is(target error) bool { return target == ErrProtocol }

// temporary reports whether the HTTP answer may be retried: a 5xx, or
// 429 Too Many Requests.
func (e *httpStatusError) temporary() bool {
	return e.code >= 500 || e.code == http.StatusTooManyRequests
}

// classifyTransport turns TLS verification failures into *ServerTrustError.
func classifyTransport(err error) error {
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrHTTPNotAllowed):
		return err
	case errors.As(err, &cve):
		return &ServerTrustError{Err: cve.Err}
	case errors.As(err, &ua):
		return &ServerTrustError{Err: ua}
	case errors.As(err, &he):
		return &ServerTrustError{Err: he}
	case errors.As(err, &ci):
		return &ServerTrustError{Err: ci}
	}
	return err
}

// retryable reports whether a failed poll may be tried again later.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var re *RejectedError
	if errors.As(err, &re) {
		return re.Temporary()
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.temporary()
	}
	if errors.Is(err, ErrServerNotTrusted) || errors.Is(err, ErrConfig) || errors.Is(err, ErrHTTPNotAllowed) ||
		errors.Is(err, ErrProtocol) || errors.Is(err, ErrBadCertificate) {
		return false
	}
	var ue *url.Error
	return errors.As(err, &ue) // network trouble
}

// GetCACert fetches the CA certificate (operation=getcacert, Table 2/3)
// over the verified TLS connection. It makes no trust decision: see CheckCA.
func (c *Client) GetCACert(ctx context.Context) (*x509.Certificate, error) {
	ans, err := c.exchange(ctx, wire.Request{Operation: wire.OpGetCACert})
	if err != nil {
		return nil, err
	}
	if ans.Status != wire.StatusOK {
		return nil, &RejectedError{Op: wire.OpGetCACert, Status: ans.Status, Reason: ans.Error}
	}
	cert, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: getcacert: the CA certificate does not parse: %v", ErrProtocol, err)
	}
	return cert, nil
}
