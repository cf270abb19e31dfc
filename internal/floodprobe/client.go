package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// target is where every enrollment request goes: the URL gives the path,
// the Host header and the TLS server name; the connection always goes to
// dial (a loopback address checked by the guard), whatever the URL's host.
type target struct {
	url        string
	dial       netip.AddrPort
	serverName string
	roots      *x509.CertPool // nil for a plain-HTTP URL
}

// loadRoots reads the PEM root the site's certificate chains to: for
// Caddy's local_certs, pki/authorities/local/root.crt in its storage. The
// probe verifies the site as a device would, rather than skipping the check.
func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the site's root certificate: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading the site's root certificate: no PEM certificate in %s", path)
	}
	return p, nil
}

// client returns an HTTP client connecting from src (the zero Addr: the
// kernel's choice, 127.0.0.1 for an IPv4 loopback) with at most a few idle
// connections: a flood worker reuses its connection as a device would.
// HTTP/1.1, as the toolkit speaks (a custom DialContext turns HTTP/2 off).
func (t *target) client(src netip.Addr, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	dial := t.dial.String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", dial)
		},
		MaxIdleConnsPerHost: 4,
	}
	if t.roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: t.roots, ServerName: t.serverName, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}
