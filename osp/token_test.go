package osp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
)

// signedResponse authorises the captured request for dests with the test
// PKI's signer at testNow.
func signedResponse(t testing.TB, dests ...Destination) *AuthorisationResponse {
	t.Helper()
	rsp, err := Authorize(authRequest(t), dests, testPKI(t).signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.Status != StatusOK {
		t.Fatalf("status %v", rsp.Status)
	}
	return rsp
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func callFor(d ResponseDestination) Call {
	return Call{Calling: d.SourceInfo.Value, Called: d.DestinationInfo.Value, CallID: d.CallID, Destination: d.SignalAddress}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	p := testPKI(t)
	rsp := signedResponse(t,
		Destination{SignalAddress: "127.0.0.2:5060"},
		Destination{SignalAddress: "[10.1.1.1]:5061", Device: "trunk-9", CalledNumber: "441678", MaxDuration: time.Hour},
		Destination{SignalAddress: "gw.example.net:5060"},
	)
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), Replay: NewReplayCache(0)}
	for i, d := range rsp.Destinations {
		if IsUnsignedToken(d.Token) {
			t.Fatalf("destination %d: token is not signed", i)
		}
		info, err := v.Verify(d.Token, callFor(d))
		if err != nil {
			t.Fatalf("destination %d: %v", i, err)
		}
		want := TokenInfo{
			Random:          info.Random,
			SourceInfo:      Info{TypeE164, "14048724799"},
			DestinationInfo: d.DestinationInfo,
			SignalAddress:   d.SignalAddress,
			NetworkID:       d.NetworkID,
			CallID:          []byte{byte('1' + i)},
			ValidAfter:      testNow.Add(-TokenBackdate),
			ValidUntil:      testNow.Add(DefaultTokenValidity),
			TransactionID:   rsp.TransactionID,
			MaxDuration:     d.MaxDuration,
		}
		if !reflect.DeepEqual(*info, want) {
			t.Errorf("destination %d:\n%+v\nwant\n%+v", i, *info, want)
		}
	}
	if d := rsp.Destinations[1]; d.DestinationInfo.Value != "441678" || d.NetworkID != "trunk-9" || d.MaxDuration != time.Hour {
		t.Errorf("destination options not applied: %+v", d)
	}
}

func TestVerifyFailures(t *testing.T) {
	p := testPKI(t)
	rsp := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"})
	d := rsp.Destinations[0]
	good := callFor(d)
	token := d.Token

	otherCA := mustKey(t)
	otherRoot := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other CA"}, NotBefore: earliest().AddDate(-1, 0, 0),
		NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, otherCA, otherCA)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(otherRoot)

	unsigned, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	unsignedToken := unsigned.Destinations[0].Token
	wrapped := []byte(`<?xml version="1.0"?><Message>` + strings.TrimPrefix(string(unsignedToken), `<?xml version="1.0"?>`) + `</Message>`)

	// content that is not XML, correctly signed
	ascii, err := p.signer.Sign([]byte("V=1\nc=14048724799\n"))
	if err != nil {
		t.Fatal(err)
	}

	flipped := bytes.Clone(token)
	at := bytes.Index(flipped, []byte("<TransactionId>")) + len("<TransactionId>")
	flipped[at] ^= 0x01 // a digit of the transaction id, inside the signed content

	tests := []struct {
		name  string
		v     Verifier
		token []byte
		call  Call
		err   error
	}{
		{"tampered content", Verifier{Roots: p.roots}, flipped, good, ErrTokenSignature},
		{"truncated", Verifier{Roots: p.roots}, token[:len(token)-10], good, ErrTokenSignature},
		{"garbage", Verifier{Roots: p.roots}, []byte{0x30, 0x03, 1, 2, 3}, good, ErrTokenSignature},
		{"empty", Verifier{Roots: p.roots}, nil, good, ErrTokenMalformed},
		{"oversize", Verifier{Roots: p.roots}, make([]byte, MaxTokenBytes+1), good, ErrTokenMalformed},
		{"other CA", Verifier{Roots: otherRoots}, token, good, ErrTokenChain},
		{"no CA configured", Verifier{}, token, good, ErrTokenChain},
		{"expired", Verifier{Roots: p.roots, Now: fixedClock(d.ValidUntil.Add(time.Second))}, token, good, ErrTokenExpired},
		{"expired beyond skew", Verifier{Roots: p.roots, Skew: 5 * time.Second, Now: fixedClock(d.ValidUntil.Add(6 * time.Second))}, token, good, ErrTokenExpired},
		{"not yet valid", Verifier{Roots: p.roots, Now: fixedClock(d.ValidAfter.Add(-time.Second))}, token, good, ErrTokenNotYetValid},
		{"wrong destination", Verifier{Roots: p.roots}, token, Call{good.Calling, good.Called, good.CallID, "[127.0.0.3]:5060"}, ErrTokenMismatch},
		{"wrong called number", Verifier{Roots: p.roots}, token, Call{good.Calling, "1679", good.CallID, good.Destination}, ErrTokenMismatch},
		{"wrong calling number", Verifier{Roots: p.roots}, token, Call{"14048724798", good.Called, good.CallID, good.Destination}, ErrTokenMismatch},
		{"wrong call id", Verifier{Roots: p.roots}, token, Call{good.Calling, good.Called, []byte("2"), good.Destination}, ErrTokenMismatch},
		{"unsigned refused", Verifier{Roots: p.roots}, unsignedToken, good, ErrTokenUnsigned},
		{"unsigned wrapped in Message", Verifier{AllowUnsigned: true}, wrapped, good, ErrTokenMalformed},
		{"signed content not XML", Verifier{Roots: p.roots}, ascii, good, ErrTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			if v.Now == nil {
				v.Now = fixedClock(testNow)
			}
			info, err := v.Verify(tc.token, tc.call)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v (info %+v), want %v", err, info, tc.err)
			}
			for _, other := range []error{ErrTokenMalformed, ErrTokenUnsigned, ErrTokenSignature, ErrTokenChain, ErrTokenMismatch,
				ErrTokenNotYetValid, ErrTokenExpired, ErrTokenReplay} {
				if other != tc.err && errors.Is(err, other) {
					t.Errorf("err %v is also %v", err, other)
				}
			}
		})
	}
	if _, err := (&Verifier{Roots: p.roots, AllowUnsigned: true, Now: fixedClock(testNow)}).Verify(wrapped, good); !errors.Is(err, ErrTokenInfoWrapped) {
		t.Errorf("wrapped: %v", err)
	}
}

// Within the skew, at the edges, with the destination written differently,
// without call id: accepted.
func TestVerifyAccepts(t *testing.T) {
	p := testPKI(t)
	d := signedResponse(t, Destination{SignalAddress: "[127.0.0.2]:5060"}).Destinations[0]
	good := callFor(d)
	cases := []struct {
		name string
		now  time.Time
		skew time.Duration
		call Call
	}{
		{"at ValidAfter", d.ValidAfter, 0, good},
		{"at ValidUntil", d.ValidUntil, 0, good},
		{"before ValidAfter within skew", d.ValidAfter.Add(-4 * time.Second), 5 * time.Second, good},
		{"after ValidUntil within skew", d.ValidUntil.Add(4 * time.Second), 5 * time.Second, good},
		{"destination without brackets", testNow, 0, Call{good.Calling, good.Called, good.CallID, "127.0.0.2:5060"}},
		{"no destination given", testNow, 0, Call{good.Calling, good.Called, good.CallID, ""}},
		{"no call id given", testNow, 0, Call{good.Calling, good.Called, nil, good.Destination}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Roots: p.roots, Now: fixedClock(tc.now), Skew: tc.skew}
			if _, err := v.Verify(d.Token, tc.call); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A token whose call id is "UNDEFINED" (the toolkit's placeholder when
	// the application has none) matches any call id.
	req := authRequest(t)
	req.CallIDs = [][]byte{UndefinedCallID}
	rsp, err := Authorize(req, []Destination{{SignalAddress: "127.0.0.2:5060"}}, p.signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	if _, err := v.Verify(rsp.Destinations[0].Token, Call{good.Calling, good.Called, []byte("any-call"), good.Destination}); err != nil {
		t.Fatal(err)
	}
	// Unsigned tokens when allowed, the captured one included.
	captured := readTestdata(t, "token-unsigned-accepted.xml")
	vu := &Verifier{AllowUnsigned: true, Now: fixedClock(testNow)}
	if _, err := vu.Verify(captured, Call{"14048724799", "1678", []byte("1"), "[127.0.0.2]:5060"}); err != nil {
		t.Fatal(err)
	}
}

// Flipping any single byte of a signed token never yields a token that
// verifies with different content.
func TestVerifyEveryByteFlipped(t *testing.T) {
	p := testPKI(t)
	d := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	orig, err := v.Verify(d.Token, callFor(d))
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range d.Token {
		tok := bytes.Clone(d.Token)
		tok[i] ^= 0x80
		info, err := v.Verify(tok, callFor(d))
		if err != nil {
			if !errors.Is(err, ErrTokenSignature) && !errors.Is(err, ErrTokenChain) && !errors.Is(err, ErrTokenMalformed) {
				t.Errorf("byte %d: unexpected error class %v", i, err)
			}
			continue
		}
		accepted++
		if !reflect.DeepEqual(info, orig) {
			t.Fatalf("byte %d flipped: accepted with different content %+v", i, info)
		}
	}
	t.Logf("%d bytes, %d flips still verified with identical content (unsigned DER fields)", len(d.Token), accepted)
}

func TestReplay(t *testing.T) {
	p := testPKI(t)
	rsp := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}, Destination{SignalAddress: "127.0.0.3:5060"})
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), Replay: NewReplayCache(0)}
	d0 := rsp.Destinations[0]
	if _, err := v.Verify(d0.Token, callFor(d0)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(d0.Token, callFor(d0)); !errors.Is(err, ErrTokenReplay) {
		t.Fatalf("second use: %v", err)
	}
	// Another token of the same authorisation (same transaction id, other
	// destination) is a different token.
	d1 := rsp.Destinations[1]
	if _, err := v.Verify(d1.Token, callFor(d1)); err != nil {
		t.Fatal(err)
	}
	// A re-encoding of the same signed content is the same token: the
	// cache is keyed by the content, not the bytes.
	if err := v.Replay.Add(sha256OfContent(t, d1.Token), d1.ValidUntil, testNow); !errors.Is(err, ErrTokenReplay) {
		t.Fatalf("same content: %v", err)
	}
}

func sha256OfContent(t *testing.T, token []byte) [32]byte {
	t.Helper()
	content, err := (&Verifier{Roots: testPKI(t).roots}).checkSigned(token, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(content)
}

func TestReplayCache(t *testing.T) {
	c := NewReplayCache(2)
	k := func(i byte) [32]byte { return [32]byte{i} }
	t0 := testNow
	if err := c.Add(k(1), t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(k(2), t0.Add(2*time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(k(3), t0.Add(time.Minute), t0); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: %v", err)
	}
	if err := c.Add(k(1), t0.Add(time.Minute), t0.Add(30*time.Second)); !errors.Is(err, ErrTokenReplay) {
		t.Fatalf("replay: %v", err)
	}
	// After k(1) expires its room is free again, and k(1) may come back.
	if err := c.Add(k(3), t0.Add(3*time.Minute), t0.Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("len %d", c.Len())
	}
	if err := c.Add(k(1), t0.Add(5*time.Minute), t0.Add(121*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// The cache's clock is the latest now it was given: an Add with an
// earlier now (sampled before another verification's, or after the wall
// clock stepped back) neither purges by it nor finds a forgotten key new.
func TestReplayCacheClock(t *testing.T) {
	k := func(i byte) [32]byte { return [32]byte{i} }
	t0 := testNow
	exp := t0.Add(time.Minute)
	type step struct {
		key          byte
		expires, now time.Time
		err          error
	}
	tests := []struct {
		name  string
		steps []step
		len   int
	}{
		{"late now of another token", []step{
			{1, exp, t0, nil},
			// Another token, just after k(1) expired: k(1) is forgotten.
			{2, exp.Add(time.Minute), exp.Add(time.Millisecond), nil},
			// A replay of k(1) that passed Verify's expiry check just before.
			{1, exp, exp.Add(-time.Millisecond), ErrTokenExpired},
			{3, exp, exp.Add(-time.Millisecond), ErrTokenExpired},
			// Expiring at the clock: not forgotten yet, still checked.
			{4, exp.Add(time.Millisecond), t0, nil},
			{4, exp.Add(time.Millisecond), exp.Add(time.Millisecond), ErrTokenReplay},
		}, 2},
		{"wall clock stepped back", []step{
			{1, exp, t0, nil},
			{2, t0.Add(10 * time.Minute), t0.Add(2 * time.Minute), nil},
			{1, exp, t0.Add(30 * time.Second), ErrTokenExpired},
			{2, t0.Add(10 * time.Minute), t0.Add(30 * time.Second), ErrTokenReplay},
			// Tokens expiring after the clock are taken as before.
			{3, t0.Add(3 * time.Minute), t0.Add(30 * time.Second), nil},
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewReplayCache(0)
			for i, s := range tc.steps {
				if err := c.Add(k(s.key), s.expires, s.now); !errors.Is(err, s.err) {
					t.Fatalf("step %d, key %d: %v, want %v", i, s.key, err, s.err)
				}
			}
			if c.Len() != tc.len {
				t.Errorf("len %d, want %d", c.Len(), tc.len)
			}
		})
	}
}

// A verification that samples its time just before the token expires and
// reaches the cache after another verification purged the token at a
// later time: the token is refused, not taken as new.
func TestReplayAfterPurge(t *testing.T) {
	p := testPKI(t)
	d := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), Replay: NewReplayCache(0)}
	if _, err := v.Verify(d.Token, callFor(d)); err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time {
		// Runs between this Verify's time and its Add, as another goroutine would.
		if err := v.Replay.Add([32]byte{1}, d.ValidUntil.Add(time.Minute), d.ValidUntil.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		return d.ValidUntil.Add(-time.Millisecond)
	}
	if _, err := v.Verify(d.Token, callFor(d)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("replay after purge: %v", err)
	}
}

// Concurrent Adds of one key with a now just before its expiry, while
// other keys are added just after it: the key is taken at most once.
func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(0)
	for r := range 500 {
		exp := testNow.Add(time.Duration(r) * time.Second)
		key := [32]byte{byte(r), byte(r >> 8)}
		var ok atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if w%2 == 0 {
					if c.Add(key, exp, exp.Add(-time.Millisecond)) == nil {
						ok.Add(1)
					}
					return
				}
				other := [32]byte{byte(r), byte(r >> 8), byte(w)}
				if err := c.Add(other, exp.Add(time.Minute), exp.Add(time.Millisecond)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := ok.Load(); n > 1 {
			t.Fatalf("round %d: key taken %d times", r, n)
		}
	}
}

// Concurrent verifications of one token: exactly one succeeds.
func TestReplayConcurrent(t *testing.T) {
	p := testPKI(t)
	d := signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), Replay: NewReplayCache(0)}
	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(d.Token, callFor(d))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTokenReplay):
				replay.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 15 {
		t.Fatalf("ok %d replay %d", ok.Load(), replay.Load())
	}
}

// The devices' check is PKCS7_verify(…, PKCS7_NOCHAIN): a signer issued by
// an intermediate the device does not hold is refused even when the token
// embeds the intermediate.
func TestVerifyNoChain(t *testing.T) {
	p := testPKI(t)
	interKey := mustKey(t)
	inter := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Intermediate"}, NotBefore: earliest().AddDate(0, -1, 0),
		NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, p.ca, p.caKey, interKey)
	key := mustKey(t)
	cert := mustCert(t, tokenCertTemplate("via intermediate"), inter, interKey, key)
	s := &TokenSigner{Cert: cert, Key: key, Chain: []*x509.Certificate{inter}}
	if err := s.Check(p.roots, testNow); err == nil {
		t.Error("Check accepted a signer that does not chain directly")
	}
	rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := rsp.Destinations[0]
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	if _, err := v.Verify(d.Token, callFor(d)); !errors.Is(err, ErrTokenChain) {
		t.Fatalf("err %v, want ErrTokenChain", err)
	}
	if ok, out := opensslVerify(t, "smime", d.Token, p.caPEM); ok {
		t.Errorf("openssl smime -nochain (PKCS7_verify NOCHAIN) accepted it:\n%s", out)
	}
}

func TestTokenSignerCheck(t *testing.T) {
	p := testPKI(t)
	if err := p.signer.Check(p.roots, testNow); err != nil {
		t.Fatal(err)
	}
	key := mustKey(t)
	mk := func(mod func(*x509.Certificate)) *x509.Certificate {
		tmpl := tokenCertTemplate("check")
		mod(tmpl)
		return mustCert(t, tmpl, p.ca, p.caKey, key)
	}
	rsaKey := mustRSAKey(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		s    *TokenSigner
		ok   bool
	}{
		{"S/MIME EKU", &TokenSigner{Cert: mk(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection} }), Key: key}, true},
		{"RSA 2048", &TokenSigner{Cert: mustCert(t, tokenCertTemplate("rsa"), p.ca, p.caKey, rsaKey), Key: rsaKey}, true},
		{"clientAuth-only EKU", &TokenSigner{Cert: mk(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }), Key: key}, false},
		{"keyEncipherment only", &TokenSigner{Cert: mk(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }), Key: key}, false},
		{"expired", &TokenSigner{Cert: mk(func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Hour) }), Key: key}, false},
		{"not yet valid", &TokenSigner{Cert: mk(func(c *x509.Certificate) { c.NotBefore = testNow.Add(time.Hour) }), Key: key}, false},
		{"RSA 1024", &TokenSigner{Cert: mustCert(t, tokenCertTemplate("rsa1024"), p.ca, p.caKey, rsa1024), Key: rsa1024}, false},
		{"P-224", &TokenSigner{Cert: mustCert(t, tokenCertTemplate("p224"), p.ca, p.caKey, p224), Key: p224}, false},
		{"key mismatch", &TokenSigner{Cert: mk(func(*x509.Certificate) {}), Key: mustKey(t)}, false},
		{"no key", &TokenSigner{Cert: p.signer.Cert}, false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// without roots too: the chain check must not be what
			// refuses a certificate out of its validity
			for _, roots := range []*x509.CertPool{p.roots, nil} {
				err := tc.s.Check(roots, testNow)
				if (err == nil) != tc.ok {
					t.Fatalf("Check (roots %v): %v", roots != nil, err)
				}
			}
		})
	}
	if _, err := (&TokenSigner{}).Sign([]byte("x")); err == nil {
		t.Error("signed without key")
	}
}

// opensslVerify runs `openssl <cmd> -verify -inform DER -binary -nochain
// -CAfile ca.pem` on token and returns whether it verified and its output
// (the content when it did).
var noChainUnsupported sync.Once

func opensslVerify(t *testing.T, cmd string, token, caPEM []byte, extra ...string) (bool, []byte) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if _, serr := os.Stat(osptk.Source()); serr != nil {
			t.Skip("openssl binary not found (nor ../shared, whose build installs it)")
		}
		t.Fatal("openssl binary not found")
	}
	dir := t.TempDir()
	tok, ca, out := filepath.Join(dir, "token.der"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "content.xml")
	if err := os.WriteFile(tok, token, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{cmd, "-verify", "-inform", "DER", "-binary", "-nochain", "-CAfile", ca, "-in", tok, "-out", out}, extra...)
	msg, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && cmd == "cms" && bytes.Contains(msg, []byte("nochain")) {
		// OpenSSL before 3.2 has no `cms -nochain` ("Unknown cipher:
		// nochain"). Without it CMS_verify may use the embedded
		// certificates as intermediates; Authorize's tokens embed only
		// the signer, so the check is the same. `smime -nochain` is the
		// exact PKCS7_NOCHAIN check on every version.
		noChainUnsupported.Do(func() { t.Logf("openssl cms has no -nochain here; checking without it") })
		args = slices.DeleteFunc(args, func(a string) bool { return a == "-nochain" })
		msg, err = exec.Command(bin, args...).CombinedOutput()
	}
	if err != nil {
		return false, msg
	}
	content, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return true, content
}

// The signed tokens verify with OpenSSL the way devices verify them:
// `openssl cms -verify -nochain` (CMS_verify, as the README of the captures
// prescribes) and `openssl smime -verify -nochain` (PKCS7_verify with
// PKCS7_NOCHAIN, the toolkit's very call in src/ospsecurity.c); the
// content is the TokenInfo XML, starting with "<?xml".
func TestOpenSSLVerifiesSignedTokens(t *testing.T) {
	p := testPKI(t)
	rsaKey := mustRSAKey(t)
	rsaSigner := &TokenSigner{Cert: mustCert(t, tokenCertTemplate("rsa token signer"), p.ca, p.caKey, rsaKey), Key: rsaKey}
	for name, s := range map[string]*TokenSigner{"P-256": p.signer, "RSA-2048": rsaSigner} {
		t.Run(name, func(t *testing.T) {
			// Tokens are checked now (the openssl binary uses the clock for
			// the certificates; the token's own window is the device's business).
			rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, time.Now(), 0)
			if err != nil {
				t.Fatal(err)
			}
			tok := rsp.Destinations[0].Token
			want, err := (&Verifier{Roots: p.roots}).checkSigned(tok, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"cms", "smime"} {
				ok, out := opensslVerify(t, cmd, tok, p.caPEM)
				if !ok {
					t.Fatalf("openssl %s -verify failed:\n%s", cmd, out)
				}
				if !bytes.Equal(out, want) || !bytes.HasPrefix(out, []byte("<?xml")) {
					t.Fatalf("openssl %s content %q", cmd, out)
				}
			}
			// One byte of the content flipped: both refuse.
			bad := bytes.Clone(tok)
			bad[bytes.Index(bad, []byte("<SourceInfo"))+1] ^= 0x20
			for _, cmd := range []string{"cms", "smime"} {
				if ok, out := opensslVerify(t, cmd, bad, p.caPEM); ok {
					t.Fatalf("openssl %s accepted a tampered token: %s", cmd, out)
				}
			}
			// Another CA: both refuse.
			otherKey := mustKey(t)
			other := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other"}, NotBefore: earliest(), NotAfter: time.Now().AddDate(1, 0, 0),
				IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, otherKey, otherKey)
			otherPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw})
			for _, cmd := range []string{"cms", "smime"} {
				if ok, out := opensslVerify(t, cmd, tok, otherPEM); ok {
					t.Fatalf("openssl %s accepted a token from another CA: %s", cmd, out)
				}
			}
		})
	}
}

// Why TokenSigner.Check wants no EKU or emailProtection: PKCS7_verify with
// PKCS7_NOCHAIN checks no purpose, CMS_verify checks S/MIME signing.
func TestOpenSSLPurposeOfTokenCertificate(t *testing.T) {
	p := testPKI(t)
	key := mustKey(t)
	tmpl := tokenCertTemplate("clientAuth token signer")
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	s := &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, key), Key: key}
	tok, err := s.Sign([]byte(`<?xml version="1.0"?><TokenInfo/>`))
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := opensslVerify(t, "smime", tok, p.caPEM); !ok {
		t.Errorf("smime (PKCS7_verify NOCHAIN) refused: %s", out)
	}
	ok, out := opensslVerify(t, "cms", tok, p.caPEM)
	if ok {
		t.Errorf("cms accepted a clientAuth-only signer")
	} else if !strings.Contains(string(out), "purpose") {
		t.Errorf("cms refused for another reason than the purpose: %s", out)
	}
}
