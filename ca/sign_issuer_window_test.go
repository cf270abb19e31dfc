package ca

import (
	"errors"
	"testing"
	"time"
)

// Sign refuses outside the issuer's validity, NotAfter itself included,
// and never dates a certificate before its issuer (Backdate is cut at the
// issuer's NotBefore) nor after it.
func TestSignWithinIssuerValidity(t *testing.T) {
	clock := fixedNow()
	c, _ := openCA(t, NewMemStore(), Config{Algorithm: P256, Now: func() time.Time { return clock }}, "")
	issuer := c.Issuer()
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{})
	for _, tc := range []struct {
		name string
		at   time.Time
		err  error
	}{
		{"a second before the issuer's NotBefore", issuer.NotBefore.Add(-time.Second), ErrExpired},
		{"a second after the issuer's NotBefore", issuer.NotBefore.Add(time.Second), nil},
		{"a second before the issuer's NotAfter", issuer.NotAfter.Add(-time.Second), nil},
		{"at the issuer's NotAfter", issuer.NotAfter, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock = tc.at
			is, err := c.Sign(csr, "device1.itsp.com", Policy{})
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if is.NotBefore.Before(issuer.NotBefore) || is.NotAfter.After(issuer.NotAfter) {
				t.Errorf("certificate valid %s to %s, issuer %s to %s", is.NotBefore, is.NotAfter, issuer.NotBefore, issuer.NotAfter)
			}
		})
	}
}

// The normal form of an IPv4 device, IPv4-mapped IPv6 included, is the
// 4-byte address.
func TestNormalizeDeviceIPv4Form(t *testing.T) {
	for _, in := range []string{"192.0.2.1", "::ffff:192.0.2.1", "[::ffff:192.0.2.1]"} {
		name, ip, err := NormalizeDevice(in)
		if err != nil || name != "192.0.2.1" || len(ip) != 4 {
			t.Errorf("NormalizeDevice(%q) = %q, %d-byte %v, %v; want 192.0.2.1, 4 bytes", in, name, len(ip), ip, err)
		}
	}
}
