package osp

import (
	"fmt"
	"testing"
	"time"
)

// The toolkit's own OSPPTransactionValidateAuthorisation (a gateway's
// token check) authorises a token of a call without caller id when the
// call's calling number is empty too, as Asterisk's OSPAuth and the
// OpenSIPS/Kamailio osp modules pass it, and refuses it for a call with a
// calling number, and a token with one for a call without (11270,
// OSPC_ERR_TRAN_TOKEN_INVALID: strcmp of the numbers).
func TestToolkitValidatesEmptyCallingNumber(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the OSP Toolkit")
	}
	exe, dir, caDER, p := validatorTrustingTestCA(t)
	now := time.Now()
	issue := func(s *TokenSigner, form string) []byte {
		var req *AuthorizationRequest
		if form == "" {
			req = authRequest(t)
		} else {
			req = emptyCalling(t, form)
		}
		rsp, err := Authorize(req, []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rsp.Status != StatusOK {
			t.Fatalf("status %v", rsp.Status)
		}
		return rsp.Destinations[0].Token
	}
	const empty, selfClosing = `<SourceInfo type="e164"></SourceInfo>`, `<SourceInfo type="e164"/>`
	cases := []struct {
		name    string
		token   []byte
		calling string
		algo    string
		code    int
	}{
		{"signed, empty calling number", issue(p.signer, empty), "", "0", 0},
		{"signed, request with <SourceInfo/>", issue(p.signer, selfClosing), "", "0", 0},
		{"unsigned, empty calling number", issue(nil, empty), "", "1", 0},
		{"token without calling number, call with one", issue(p.signer, empty), "14048724799", "0", 11270},
		{"token with calling number, call without", issue(p.signer, ""), "", "0", 11270},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, authorised, _ := toolkitValidate(t, exe, dir, caDER, fmt.Sprintf("anon-token-%d", i), tc.token, tc.calling, "1678", tc.algo)
			if code != tc.code {
				t.Fatalf("errcode %d, want %d", code, tc.code)
			}
			if code == 0 && authorised != "1" {
				t.Fatalf("not authorised: authorised=%s", authorised)
			}
		})
	}
}
