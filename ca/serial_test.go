package ca

import (
	"math/big"
	"testing"
)

// Serials carry 127 random bits (README, "Rogue certificates" and "MD5
// threat model"): over 64 issuances of each profile every serial is new,
// every one of the 127 low bits is seen both set and clear, and bit 127 is
// never set (the serial stays a positive 16-byte INTEGER). A counter, a
// timestamp or fewer random bytes fail here.
func TestSignSerialsCarry127RandomBits(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *CA
		key  string
		p    Policy
	}{
		{"modern", sharedCA(t, Config{Algorithm: P256}), "p256", Policy{}},
		{"legacy", openLegacy(t, NewMemStore()), "rsa2048", Policy{Legacy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr := makeCSR(t, testKey(t, tc.key), csrOpts{cn: "device1.itsp.com"})
			const n = 64
			seen := map[string]bool{}
			or, and := new(big.Int), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 127), big.NewInt(1))
			for range n {
				is, err := tc.c.Sign(csr, "device1.itsp.com", tc.p)
				if err != nil {
					t.Fatal(err)
				}
				s := is.Cert.SerialNumber
				if s.Sign() <= 0 || s.BitLen() > 127 {
					t.Fatalf("serial %x: not a positive integer of at most 127 bits", s)
				}
				if seen[s.Text(16)] {
					t.Fatalf("serial %x issued twice", s)
				}
				seen[s.Text(16)] = true
				or.Or(or, s)
				and.And(and, s)
			}
			// each bit stays 0 in all 64 serials (or 1 in all) with
			// probability 2^-63: a constant bit is not random
			for i := range 127 {
				if or.Bit(i) == 0 || and.Bit(i) == 1 {
					t.Fatalf("serial bit %d is constant over %d issuances (or %x, and %x)", i, n, or, and)
				}
			}
		})
	}
}
