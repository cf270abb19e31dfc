package osp

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// An ASCII token ("V=1\n…", the toolkit's IAX/SIP token format) is an
// unsigned token, as OSPPTransactionValidateAuthorisation takes it:
// ErrTokenUnsigned when unsigned tokens are not allowed, else
// ErrTokenMalformed (this package does not read that form); never a bad
// signature.
func TestVerifyASCIITokenIsUnsigned(t *testing.T) {
	p := testPKI(t)
	d := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	ascii := []byte("V=1\nr=42\nc=14048724799\nC=1678\ni=MQ==\nU=2026-11-25T03:13:44Z\n")
	tests := []struct {
		name          string
		allowUnsigned bool
		want          error
	}{
		{"unsigned not allowed", false, ErrTokenUnsigned},
		{"unsigned allowed, ASCII form not supported", true, ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), AllowUnsigned: tc.allowUnsigned}
			_, err := v.Verify(ascii, callFor(d))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrTokenSignature) {
				t.Fatalf("an unsigned token reported as a bad signature: %v", err)
			}
		})
	}
}

// The signer certificate's validity is checked at the Verifier's Now, as
// OpenSSL's PKCS7_verify (the toolkit's check) checks it at the gateway's
// time, and reported as ErrTokenChain. smallstep/pkcs7's Verify compares
// the token's signing-time attribute (the signing server's clock) with it
// instead, as a signature error: that refused tokens OpenSSL accepts when
// the signing instance's clock was behind the certificate's NotBefore.
func TestVerifySignerValidityIsNotASignatureError(t *testing.T) {
	p := testPKI(t)
	real := time.Now()
	signerValid := func(notBefore, notAfter time.Time) *TokenSigner {
		key := mustKey(t)
		tmpl := tokenCertTemplate("token signer")
		tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
		return &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, key), Key: key}
	}
	tests := []struct {
		name     string
		signer   *TokenSigner
		verifyAt time.Time // the gateway's clock (and the token's issue time)
		// opensslOK: what `openssl smime -verify -nochain -attime`
		// (PKCS7_verify with PKCS7_NOCHAIN, the toolkit's check) says
		opensslOK bool
		want      []error // any of these; nil entry: accepted
	}{
		{"signer expired before the token was signed", signerValid(real.AddDate(0, 0, -30), real.Add(-time.Hour)),
			real, false, []error{ErrTokenChain}},
		{"signer valid at the gateway's time, signing time before NotBefore", signerValid(real.Add(time.Hour), real.AddDate(1, 0, 0)),
			real.Add(2 * time.Hour), true, []error{nil, ErrTokenChain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, tc.signer, tc.verifyAt, 0)
			if err != nil {
				t.Fatal(err)
			}
			d := rsp.Destinations[0]
			if ok, out := opensslVerify(t, "smime", d.Token, p.caPEM, "-attime", strconv.FormatInt(tc.verifyAt.Unix(), 10)); ok != tc.opensslOK {
				t.Fatalf("openssl smime -nochain at the gateway's time: ok=%v, want %v:\n%s", ok, tc.opensslOK, out)
			}
			v := &Verifier{Roots: p.roots, Now: fixedClock(tc.verifyAt)}
			_, err = v.Verify(d.Token, callFor(d))
			for _, w := range tc.want {
				if (w == nil && err == nil) || (w != nil && errors.Is(err, w)) {
					return
				}
			}
			t.Fatalf("err %v, want one of %v (the signature is valid; only the signer certificate's validity is at stake)", err, tc.want)
		})
	}
}
