package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// post sends one enrollment request and returns the answer's status and
// how long it took. Anything but an HTTP 200 carrying a decodable answer
// is an error: the summary counts it apart from the statuses.
func (t *target) post(c *http.Client, r wire.Request) (int, time.Duration, error) {
	body := wire.EncodeRequest(r)
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", wire.RequestContentType(r.Operation))
	resp, err := c.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBody+1))
	resp.Body.Close()
	el := time.Since(start)
	if err != nil {
		return 0, el, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, el, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	a, err := wire.DecodeResponse(b)
	if err != nil {
		return 0, el, fmt.Errorf("decoding the answer: %w", err)
	}
	return a.Status, el, nil
}

// login is a request or retrieve for device 134217728 (customer 0) of
// examples/clearinghouse.conf, whose CSR names device4.com.
func login(op, user, pass string, nonce, csr []byte) wire.Request {
	return wire.Request{Operation: op, Nonce: nonce, Username: user, Password: pass,
		Device: "134217728", Customer: "0", CSR: csr}
}

// newCSR returns a P-256 CSR (DER) for cn.
func newCSR(cn string) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CSR's key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		return nil, fmt.Errorf("creating the CSR: %w", err)
	}
	return der, nil
}

// rnd returns n random bytes (crypto/rand.Read returns no error: it
// crashes the program instead).
func rnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// rndHex is rnd(n) as hex, for usernames and passwords.
func rndHex(n int) string { return hex.EncodeToString(rnd(n)) }
