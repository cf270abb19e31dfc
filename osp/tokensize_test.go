package osp

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The toolkit copies every element value into char[4096] unchecked, and
// Asterisk writes the token after its SIP header name into char[4096]: a
// token whose base64 is longer than MaxTokenBase64 (4077) is refused,
// never sent.
func TestCheckTokenSize(t *testing.T) {
	for _, tc := range []struct {
		raw int
		ok  bool
	}{{0, true}, {1, true}, {3057, true}, {3058, false}, {3069, false}, {MaxTokenBytes, false}} {
		err := checkTokenSize(make([]byte, tc.raw))
		if (err == nil) != tc.ok || (err != nil && (!errors.Is(err, ErrTokenTooLarge) || !strings.Contains(err.Error(), "4077"))) {
			t.Errorf("%d bytes (%d in base64): %v", tc.raw, base64.StdEncoding.EncodedLen(tc.raw), err)
		}
	}
	// the other values of an answer stay far below
	if n := base64.StdEncoding.EncodedLen(MaxCallIDBytes); n > MaxValueBytes/4 {
		t.Errorf("a CallId is up to %d bytes in base64", n)
	}
	if MaxNumber > MaxValueBytes/16 || MaxSignalAddress > MaxValueBytes/8 {
		t.Error("numbers or signal addresses too long")
	}
}

// A request with a long call id and long numbers, a long destination name
// and an RSA-2048 signer certified by an RSA-2048 CA: the token would
// overflow a toolkit gateway, and the authorization is refused with 400;
// the same just under the limit passes.
func TestAuthorizeTokenTooLarge(t *testing.T) {
	caKey := mustRSAKey(t)
	ca := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "RSA Operational CA", Organization: []string{"Clearinghouse"}},
		NotBefore: earliest().AddDate(-1, 0, 0), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, caKey, caKey)
	key := mustRSAKey(t)
	signer := &TokenSigner{Cert: mustCert(t, tokenCertTemplate("RSA Operational CA token signer"), ca, caKey, key), Key: key}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	host := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example.net"
	dest := []Destination{{SignalAddress: host + ":5060", Device: strings.Repeat("d", MaxNumber)}}
	request := func(callID int) *AuthorizationRequest {
		// through the parser: a device can send this
		b, err := (&AuthorizationRequest{MessageID: "m", ComponentID: "c", Timestamp: testNow,
			CallIDs:         [][]byte{bytes.Repeat([]byte{'c'}, callID)},
			SourceInfo:      []Info{{TypeE164, strings.Repeat("1", MaxNumber)}},
			DestinationInfo: []Info{{TypeE164, strings.Repeat("2", MaxNumber)}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		req, err := ParseAuthorizationRequest(b)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	// The token's size grows by 4 bytes every 3 bytes of call id (base64
	// inside the TokenInfo) and varies with the digits of the random
	// attribute (up to 10) and of the transaction id (up to 19): measure
	// at 300 bytes, extrapolate the largest call id that always fits.
	const at = 300
	rsp, err := Authorize(request(at), dest, signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok := rsp.Destinations[0].Token
	digits := func(after string) int {
		i := bytes.Index(tok, []byte(after)) + len(after)
		return bytes.IndexFunc(tok[i:], func(r rune) bool { return r < '0' || r > '9' })
	}
	slack := 10 - digits(`<TokenInfo random="`) + 19 - digits(`<TransactionId>`)
	worst := func(n int) int { return len(tok) + slack + 4*((n+2)/3) - 4*((at+2)/3) }
	under := at
	for worst(under+1) <= MaxTokenBase64/4*3 {
		under++
	}
	over := under + 24 // 32 bytes more: over the limit whatever the random digits
	if over > MaxCallIDBytes {
		t.Fatalf("call id of %d bytes needed to exceed the limit; the parser takes %d", over, MaxCallIDBytes)
	}
	t.Logf("a %d-byte call id fits (token %d bytes), %d does not", under, worst(under), over)

	for _, tc := range []struct {
		name   string
		callID int
		ok     bool
	}{
		{"just under the limit", under, true},
		{"over the limit", over, false},
		{"the longest call id", MaxCallIDBytes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tc.callID)
			rsp, err := Authorize(req, dest, signer, testNow, 0)
			if tc.ok {
				if err != nil || rsp.Status != StatusOK {
					t.Fatalf("%v %+v", err, rsp)
				}
				d := rsp.Destinations[0]
				if n := base64.StdEncoding.EncodedLen(len(d.Token)); n > MaxTokenBase64 || n < MaxTokenBase64-40 {
					t.Fatalf("token of %d bytes in base64", n)
				}
				if _, err := (&Verifier{Roots: roots, Now: fixedClock(testNow)}).Verify(d.Token, callFor(d)); err != nil {
					t.Fatal(err)
				}
				out, err := rsp.Marshal()
				if err != nil || !bytes.Contains(out, []byte(`<Token encoding="base64">`+base64.StdEncoding.EncodeToString(d.Token)+`</Token>`)) {
					t.Fatalf("%v\n%s", err, out)
				}
				return
			}
			if !errors.Is(err, ErrTokenTooLarge) || rsp != nil || !strings.Contains(err.Error(), strconv.Itoa(MaxTokenBase64)) {
				t.Fatalf("err %v, answer %+v", err, rsp)
			}
			if st := StatusOf(err); st != StatusBadRequest {
				t.Fatalf("status %v", st)
			}
			ans, err := Refuse(req, StatusOf(err), testNow)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := ans.Marshal()
			if back, err := ParseAuthorisationResponse(out); err != nil || back.Status != StatusBadRequest || len(back.Destinations) != 0 {
				t.Fatalf("%v %s", err, out)
			}
		})
	}
}
