package caddyenroll_test

import (
	"bytes"
	"net/http"
	"testing"
)

// max_body above the protocol's 64 KiB (earlier versions took up to 1 MiB)
// is lowered to it: a body of 64 KiB and a byte is still refused (413).
func TestMaxBodyLoweredToBound(t *testing.T) {
	s := startServer(t, serverOpts{handler: "max_body 1MiB"})
	body := append([]byte("operation=getcacert"), bytes.Repeat([]byte("&"), 64<<10+1-19)...)
	if _, resp, raw := s.post(s.https, body, "text/plain"); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of 64 KiB and a byte under max_body 1MiB: HTTP %d %q, want 413", resp.StatusCode, raw)
	}
	if a, _, raw := s.post(s.https, body[:64<<10], "text/plain"); a == nil || a.Status != 0 {
		t.Errorf("a body of 64 KiB: %q, want the CA certificate", raw)
	}
}
