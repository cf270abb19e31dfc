package ca

import (
	"crypto/x509"
	"testing"
)

// Every certificate of the issuer's chain constrains the names, not the
// issuer's only; an empty DNS constraint permits every name (RFC 5280,
// as crypto/x509 reads it).
func TestConstraintsOfWholeChain(t *testing.T) {
	unconstrained := &x509.Certificate{}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		want  bool
	}{
		{"constraint on the root only, outside", []*x509.Certificate{unconstrained, {PermittedDNSDomains: []string{"itsp.com"}}}, false},
		{"constraint on the root only, within", []*x509.Certificate{unconstrained, {PermittedDNSDomains: []string{"example.org"}}}, true},
		{"exclusion on the root only", []*x509.Certificate{unconstrained, {ExcludedDNSDomains: []string{"example.org"}}}, false},
		{"empty permitted constraint", []*x509.Certificate{{PermittedDNSDomains: []string{""}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &CA{chain: tc.chain}
			if err := c.checkConstraints("gw.example.org", nil); (err == nil) != tc.want {
				t.Fatalf("err %v, want permitted %v", err, tc.want)
			}
		})
	}
}
