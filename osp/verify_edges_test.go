package osp

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// edgeInfo is the content of a token for edgeCall, valid a minute
// around at.
func edgeInfo(at time.Time) *TokenInfo {
	return &TokenInfo{
		SourceInfo:      Info{TypeE164, "14048724799"},
		DestinationInfo: Info{TypeE164, "1678"},
		SignalAddress:   "[127.0.0.2]:5060",
		CallID:          []byte("1"),
		ValidAfter:      at.Add(-time.Minute),
		ValidUntil:      at.Add(time.Minute),
		TransactionID:   42,
	}
}

var edgeCall = Call{Calling: "14048724799", Called: "1678", CallID: []byte("1"), Destination: "[127.0.0.2]:5060"}

func mustEncode(t *testing.T, info *TokenInfo) []byte {
	t.Helper()
	b, err := info.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSign(t *testing.T, s *TokenSigner, content []byte) []byte {
	t.Helper()
	tok, err := s.Sign(content)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The toolkit reads a token's content as XML only when it starts with
// "<?xml": content without the declaration, or after blanks, is refused
// as the toolkit refuses it, signed or not.
func TestVerifyContentWithoutXMLDeclaration(t *testing.T) {
	p := testPKI(t)
	enc := mustEncode(t, edgeInfo(testNow))
	bare := []byte(strings.TrimPrefix(string(enc), `<?xml version="1.0"?>`))
	if len(bare) == len(enc) || !strings.HasPrefix(string(bare), "<TokenInfo") {
		t.Fatalf("encoding changed: %q", enc)
	}
	for _, tc := range []struct {
		name  string
		token []byte
	}{
		{"signed, no declaration", mustSign(t, p.signer, bare)},
		{"signed, blank before declaration", mustSign(t, p.signer, append([]byte(" "), enc...))},
		{"unsigned, no declaration", bare},
		{"unsigned, blank before declaration", append([]byte("\n"), enc...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Roots: p.roots, AllowUnsigned: true, Now: fixedClock(testNow)}
			if _, err := v.Verify(tc.token, edgeCall); !errors.Is(err, ErrTokenMalformed) {
				t.Fatalf("err %v, want %v", err, ErrTokenMalformed)
			}
		})
	}
	// the same content with its declaration passes: the refusals above
	// are the declaration's
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	if _, err := v.Verify(mustSign(t, p.signer, enc), edgeCall); err != nil {
		t.Fatalf("with declaration: %v", err)
	}
}

// The signer certificate's validity is checked at the Verifier's clock,
// not the machine's: a token valid at Now whose signer is not is refused.
func TestVerifySignerValidityAtVerifierClock(t *testing.T) {
	p := testPKI(t)
	cert := p.signer.Cert
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"after the signer's NotAfter", cert.NotAfter.Add(time.Hour)},
		{"before the signer's NotBefore", cert.NotBefore.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := mustSign(t, p.signer, mustEncode(t, edgeInfo(tc.at)))
			v := &Verifier{Roots: p.roots, Now: fixedClock(tc.at)}
			if _, err := v.Verify(token, edgeCall); !errors.Is(err, ErrTokenChain) {
				t.Fatalf("err %v, want %v", err, ErrTokenChain)
			}
		})
	}
}

// finishWithCertificates marshals sd with the certificates field of other
// (a SignedData already finished), whatever sd's signers are.
func finishWithCertificates(t *testing.T, sd, other *pkcs7.SignedData) []byte {
	t.Helper()
	sd.GetSignedData().Certificates = other.GetSignedData().Certificates
	der, err := finishWithoutCertificates(sd)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A token must have exactly one signer and some content, and one that
// embeds certificates must embed its signer's: a CA-signed token carrying
// another certificate is not taken as CA-signed.
func TestVerifySignerForm(t *testing.T) {
	p := testPKI(t)
	content := mustEncode(t, edgeInfo(testNow))
	newSD := func() *pkcs7.SignedData {
		sd, err := pkcs7.NewSignedData(content)
		if err != nil {
			t.Fatal(err)
		}
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		return sd
	}
	// a finished SignedData whose certificates field holds the token
	// signer's certificate only
	signerCerts := newSD()
	if err := signerCerts.AddSigner(p.signer.Cert, p.signer.Key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := signerCerts.Finish(); err != nil {
		t.Fatal(err)
	}

	twoCASigned := newSD()
	for range 2 {
		if err := twoCASigned.SignWithoutAttr(p.ca, p.caKey, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	twoNoCerts, err := finishWithoutCertificates(twoCASigned)
	if err != nil {
		t.Fatal(err)
	}

	caSignedForeign := newSD()
	if err := caSignedForeign.SignWithoutAttr(p.ca, p.caKey, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	foreign := finishWithCertificates(t, caSignedForeign, signerCerts)

	for _, tc := range []struct {
		name  string
		token []byte
	}{
		{"two signers, no certificates", twoNoCerts},
		{"CA-signed, embeds another certificate", foreign},
		// a valid signature of nothing is no token
		{"empty content", mustSign(t, p.signer, []byte{})},
		{"CA-signed, empty content", mustSign(t, caSigner(p), []byte{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pkcs7.Parse(tc.token); err != nil {
				t.Fatalf("test token does not parse: %v", err)
			}
			v := &Verifier{Roots: p.roots, CASigners: []*x509.Certificate{p.ca}, Now: fixedClock(testNow)}
			if _, err := v.Verify(tc.token, edgeCall); !errors.Is(err, ErrTokenSignature) {
				t.Fatalf("err %v, want %v", err, ErrTokenSignature)
			}
		})
	}
}

// A CA signer is trusted only within its validity at the Verifier's clock,
// before it as after it.
func TestVerifyCASignerNotYetValid(t *testing.T) {
	p := testPKI(t)
	future := mustCert(t, &x509.Certificate{Subject: p.ca.Subject, NotBefore: testNow.Add(time.Hour), NotAfter: testNow.AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, p.caKey, p.caKey)
	for _, tc := range []struct {
		name string
		at   time.Time
		err  error
	}{
		{"before the CA signer's NotBefore", testNow, ErrTokenChain},
		{"within its validity", future.NotBefore.Add(time.Minute), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{CASigners: []*x509.Certificate{future}, Now: fixedClock(tc.at)}
			// a token valid at tc.at: only the signer's validity is at stake
			token := mustSign(t, &TokenSigner{Cert: future, Key: p.caKey, CASigned: true}, mustEncode(t, edgeInfo(tc.at)))
			_, err := v.Verify(token, edgeCall)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// When the signing-time attribute is outside the signer's validity,
// pkcs7's Verify stops before the signature; the signature is then still
// checked (verifySignatureOnly's second Verify): an altered signature is
// refused.
func TestVerifySignatureCheckedDespiteSigningTime(t *testing.T) {
	p := testPKI(t)
	real := time.Now()
	key := mustKey(t)
	tmpl := tokenCertTemplate("token signer")
	tmpl.NotBefore, tmpl.NotAfter = real.Add(time.Hour), real.AddDate(1, 0, 0)
	signer := &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, key), Key: key}
	at := real.Add(2 * time.Hour)
	good := mustSign(t, signer, mustEncode(t, edgeInfo(at)))
	// the signature is the DER's last element: the content digest still
	// matches, the signature over the signed attributes does not
	altered := bytes.Clone(good)
	altered[len(altered)-1] ^= 0x01
	for _, tc := range []struct {
		name  string
		token []byte
		err   error
	}{
		{"as signed", good, nil},
		{"signature altered", altered, ErrTokenSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Roots: p.roots, Now: fixedClock(at)}
			_, err := v.Verify(tc.token, edgeCall)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// A token without CallId, or with the toolkit's "UNDEFINED", matches any
// call id, as the toolkit matches it; one with a call id only that call's.
func TestVerifyCallIDOfToken(t *testing.T) {
	p := testPKI(t)
	for _, tc := range []struct {
		name    string
		tokenID []byte
		callID  []byte
		err     error
	}{
		{"token without call id", nil, []byte("1"), nil},
		{"token with UNDEFINED", UndefinedCallID, []byte("1"), nil},
		{"same call id", []byte("1"), []byte("1"), nil},
		{"call without call id", []byte("1"), nil, nil},
		{"other call id", []byte("1"), []byte("2"), ErrTokenMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := edgeInfo(testNow)
			info.CallID = tc.tokenID
			call := edgeCall
			call.CallID = tc.callID
			v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
			_, err := v.Verify(mustSign(t, p.signer, mustEncode(t, info)), call)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// The replay cache keeps a token as long as Verify accepts it, Skew
// included, and knows it by its content: the same content signed again
// (another CMS encoding, another ECDSA signature) is the same token.
func TestVerifyReplayEdges(t *testing.T) {
	p := testPKI(t)
	info := edgeInfo(testNow)
	content := mustEncode(t, info)
	first, again := mustSign(t, p.signer, content), mustSign(t, p.signer, content)
	if bytes.Equal(first, again) {
		t.Fatal("signing twice gave the same bytes")
	}
	const skew = 5 * time.Second
	for _, tc := range []struct {
		name   string
		at     time.Time
		second []byte
	}{
		{"within the skew after ValidUntil", info.ValidUntil.Add(skew - time.Second), first},
		{"content signed again", testNow, again},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Roots: p.roots, Skew: skew, Now: fixedClock(tc.at), Replay: NewReplayCache(0)}
			if _, err := v.Verify(first, edgeCall); err != nil {
				t.Fatalf("first use: %v", err)
			}
			if _, err := v.Verify(tc.second, edgeCall); !errors.Is(err, ErrTokenReplay) {
				t.Fatalf("second use: err %v, want %v", err, ErrTokenReplay)
			}
		})
	}
}
