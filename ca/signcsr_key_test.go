package ca

import (
	"testing"
)

// SignCSR certifies the key whose possession the request proved: a
// parsed request whose PublicKey was changed afterwards (the field is
// exported) is refused, not issued for the other key.
func TestSignCSRRefusesAlteredKey(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	for _, tc := range []struct {
		name  string
		other string // key kind put in place of the request's; "": none
		ok    bool
	}{
		{"as parsed", "", true},
		{"another key of the same type", "p384", false},
		{"another key type", "ed25519", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := ParseCSR(makeCSR(t, testKey(t, "p256"), csrOpts{}), Policy{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.other != "" {
				csr.PublicKey = testKey(t, tc.other).Public()
			}
			is, err := c.SignCSR(csr, "device1.itsp.com", Policy{})
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want accepted=%v", err, tc.ok)
			}
			if err == nil && string(is.Cert.RawSubjectPublicKeyInfo) != string(csr.rawSPKI) {
				t.Fatal("issued for another key than the request's")
			}
		})
	}
}
