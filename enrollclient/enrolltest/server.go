// Package enrolltest is a fake clearinghouse enrollment server for tests of
// device-side clients: it speaks the seed's protocol (getcacert, request,
// retrieve; Tables 1–6) through package wire over httptest, issues device
// certificates from an in-memory CA, and records every message it receives.
// It is a test double with knobs for failure cases (pending, rejection, a
// certificate for the wrong key or from another CA), not a server.
package enrolltest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Config is the server's behaviour; change it with Server.Update.
type Config struct {
	Username, Password string // accepted credentials (default "user" / "pass")
	// PendingPolls is how many retrieves are answered status=1 before the
	// certificate is issued; with 0 the request is issued at once.
	PendingPolls int
	// Manual keeps requests pending until Approve or Reject.
	Manual bool
	// RejectStatus ≥ 2 answers every request/retrieve with that status.
	RejectStatus int
	RejectReason string
	// WrongKey issues certificates for a key other than the CSR's.
	WrongKey bool
	// OtherCA signs certificates with a CA that has the same name as, but
	// another key than, the CA returned by getcacert.
	OtherCA bool
	// Lifetime of issued certificates (default 365 days; cut at the CA's
	// end, 10 years after New) and their Age at issue (NotBefore = now -
	// Age; default 1 minute).
	Lifetime, Age time.Duration
	// HTTPStatus, when not 0 or 200, answers every message with that HTTP
	// status and an empty body.
	HTTPStatus int
}

// Message is one request the server received.
type Message struct {
	Operation   string // decoded operation ("" if the body did not decode)
	ContentType string
	Body        []byte
	Request     *wire.Request // nil if the body did not decode
}

// Server is the fake server. URL is the enrollment URL.
type Server struct {
	URL   string
	HTTP  *httptest.Server
	CA    *x509.Certificate
	CAKey crypto.Signer

	other    *x509.Certificate
	otherKey crypto.Signer

	mu      sync.Mutex
	cfg     Config
	log     []Message
	entries map[string]*entry
	nonces  map[string]string // client nonce → the request it belongs to
	issued  [][]byte
}

type entry struct {
	state     string // pending, issued, rejected
	pollsLeft int
	csr       *x509.CertificateRequest
	cert      []byte
	nonce     string
}

// New starts a TLS server (httptest's self-signed certificate; trust it with
// Server.HTTP.Client() or RootPEM). It is closed when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := newServer(t, cfg)
	s.HTTP = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.HTTP.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures in trust tests
	s.HTTP.StartTLS()
	s.URL = s.HTTP.URL + "/"
	t.Cleanup(s.HTTP.Close)
	return s
}

// NewHTTP starts a plain-HTTP server.
func NewHTTP(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := newServer(t, cfg)
	s.HTTP = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.HTTP.URL + "/"
	t.Cleanup(s.HTTP.Close)
	return s
}

func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := &Server{cfg: cfg, entries: map[string]*entry{}, nonces: map[string]string{}}
	var err error
	if s.CA, s.CAKey, err = NewCA("Test Clearinghouse Device CA"); err != nil {
		t.Fatal(err)
	}
	if s.other, s.otherKey, err = NewCA("Test Clearinghouse Device CA"); err != nil {
		t.Fatal(err)
	}
	return s
}

// NewCA makes a self-signed ECDSA P-256 CA certificate.
func NewCA(name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Test Clearinghouse"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// Update changes the configuration under the server's lock.
func (s *Server) Update(f func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg)
}

// Messages returns a copy of the messages received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.log...)
}

// Ops returns the operations received so far, in order.
func (s *Server) Ops() []string {
	var ops []string
	for _, m := range s.Messages() {
		ops = append(ops, m.Operation)
	}
	return ops
}

// Saw reports whether op was received.
func (s *Server) Saw(op string) bool {
	for _, m := range s.Messages() {
		if m.Operation == op {
			return true
		}
	}
	return false
}

// Issued returns the certificates issued so far (DER), in order.
func (s *Server) Issued() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.issued...)
}

// Approve issues every pending request (Config.Manual).
func (s *Server) Approve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.state == "pending" {
			s.issueLocked(e)
		}
	}
}

// Reject refuses every pending request (answered status=8 afterwards).
func (s *Server) Reject() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.state == "pending" {
			e.state = "rejected"
		}
	}
}

// RootPEM is the TLS server's certificate as PEM, to use as a trust anchor.
func (s *Server) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.HTTP.Certificate().Raw})
}

// CAPEM is the device CA certificate returned by getcacert, as PEM.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.CA.Raw})
}

// CAFingerprint is the SHA-256 of the CA certificate, colon-hex upper case.
func (s *Server) CAFingerprint() string {
	sum := sha256.Sum256(s.CA.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, wire.MaxBody+1))
	req, derr := wire.DecodeRequest(body)
	s.mu.Lock()
	m := Message{ContentType: r.Header.Get("Content-Type"), Body: body, Request: req}
	if req != nil {
		m.Operation = req.Operation
	}
	s.log = append(s.log, m)
	cfg := s.cfg
	var resp wire.Response
	switch {
	case r.Method != http.MethodPost:
		s.mu.Unlock()
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	case cfg.HTTPStatus != 0 && cfg.HTTPStatus != http.StatusOK:
		s.mu.Unlock()
		w.WriteHeader(cfg.HTTPStatus)
		return
	case derr != nil:
		st := wire.StatusForError(derr)
		resp = wire.Response{Status: st, Error: derr.Error()}
	default:
		resp = s.answerLocked(req, cfg)
	}
	s.mu.Unlock()
	out := wire.EncodeResponse(resp)
	w.Header().Set("Content-Type", wire.ContentTypeResponse)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func fail(st int, reason string) wire.Response { return wire.Response{Status: st, Error: reason} }

func (s *Server) answerLocked(req *wire.Request, cfg Config) wire.Response {
	if req.Operation == wire.OpGetCACert {
		return wire.Response{Status: wire.StatusOK, Certificate: s.CA.Raw}
	}
	user, pass := cfg.Username, cfg.Password
	if user == "" && pass == "" {
		user, pass = "user", "pass"
	}
	if req.Username != user || req.Password != pass {
		return fail(wire.StatusBadCredentials, "bad username or password")
	}
	if len(req.Nonce) == 0 {
		return fail(wire.StatusBadRequest, "nonce is required")
	}
	if len(req.CSR) == 0 {
		return fail(wire.StatusBadRequest, "certificate request is required")
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil || csr.CheckSignature() != nil {
		return fail(wire.StatusBadCSR, "bad certificate request")
	}
	spki := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	id := strings.ToLower(csr.Subject.CommonName) + "|" + req.Device + "|" + hex.EncodeToString(spki[:])
	// as the server: a nonce binds to one request; its retrieves may repeat it
	if prev, ok := s.nonces[string(req.Nonce)]; ok && prev != id {
		return fail(wire.StatusNonceReused, "nonce was already used with another request")
	}
	s.nonces[string(req.Nonce)] = id
	if cfg.RejectStatus >= 2 {
		return fail(cfg.RejectStatus, cfg.RejectReason)
	}
	e := s.entries[id]
	if e == nil {
		if req.Operation == wire.OpRetrieve {
			return fail(wire.StatusNotFound, "no request for this device and key")
		}
		var nb [8]byte
		rand.Read(nb[:])
		e = &entry{state: "pending", pollsLeft: cfg.PendingPolls, csr: csr, nonce: strings.ToUpper(hex.EncodeToString(nb[:]))}
		s.entries[id] = e
		if !cfg.Manual && cfg.PendingPolls == 0 {
			s.issueLocked(e)
		}
	} else if e.state == "pending" && !cfg.Manual && req.Operation == wire.OpRetrieve {
		if e.pollsLeft > 0 {
			e.pollsLeft--
		} else {
			s.issueLocked(e)
		}
	}
	switch e.state {
	case "issued":
		if e.cert == nil {
			return fail(wire.StatusServerError, "server error")
		}
		return wire.Response{Status: wire.StatusOK, Certificate: e.cert}
	case "rejected":
		return fail(wire.StatusRejected, "rejected by the administrator")
	}
	return wire.Response{Status: wire.StatusPending, Nonce: e.nonce}
}

func (s *Server) issueLocked(e *entry) {
	cfg := s.cfg
	life, age := cfg.Lifetime, cfg.Age
	if life == 0 {
		life = 365 * 24 * time.Hour
	}
	if age == 0 {
		age = time.Minute
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	nb := time.Now().Add(-age)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: e.csr.Subject.CommonName},
		DNSNames:     e.csr.DNSNames,
		IPAddresses:  e.csr.IPAddresses,
		NotBefore:    nb,
		NotAfter:     nb.Add(life),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	pub := e.csr.PublicKey
	if cfg.WrongKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub = k.Public()
	}
	parent, key := s.CA, s.CAKey
	if cfg.OtherCA {
		parent, key = s.other, s.otherKey
	}
	if tmpl.NotAfter.After(parent.NotAfter) { // as the real server caps them
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err == nil {
		e.cert = der
		s.issued = append(s.issued, der)
	}
	e.state = "issued"
}
