package caddyenroll

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A ca_signed token over the 1024 bytes the OpenSIPS/Kamailio OSP modules
// send (a long SIP Call-ID) is still answered (Asterisk takes it), and
// logged at WARN once per interval: the call would otherwise fail at the
// terminating gateway with nothing here to say why. Tokens that fit, and
// signed tokens (for Asterisk), are not warned of.
func TestCASignedTokenSizeWarning(t *testing.T) {
	const conf = "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice x.example \"\" enabled enrolled\nroute \"\" '1405' x.example 1\n"
	h := reauthHandlerAt(t, conf, map[string]string{"x.example": "192.0.2.50:5060"}, "gw1.example")
	core, logs := observer.New(zapcore.WarnLevel)
	h.log = zap.New(core)
	h.app.pendingThrottle = new(throttle)
	call := func(tokens string, callID []byte) int {
		t.Helper()
		h.Tokens = tokens
		body, err := (&osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
			CallIDs: [][]byte{callID}, SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, MaxDestinations: 1}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rsp, err := osp.ParseAuthorisationResponse(postOSP(t, h, body, "192.0.2.1:5060"))
		if err != nil || !rsp.Status.OK() || len(rsp.Destinations) != 1 {
			t.Fatalf("authorization: %v %v", err, rsp)
		}
		return len(rsp.Destinations[0].Token)
	}
	warned := func() int { return logs.FilterMessageSnippet("larger than the OpenSIPS/Kamailio").Len() }

	if n := call(TokensCASigned, []byte("a84b4c76e66710@pc33.example.com")); n > sipModuleTokenLimit || warned() != 0 {
		t.Fatalf("typical call: token of %d bytes, %d warnings; want at most %d, none", n, warned(), sipModuleTokenLimit)
	}
	if n := call(TokensSigned, []byte("a84b4c76e66710@pc33.example.com")); n <= sipModuleTokenLimit || warned() != 0 {
		t.Fatalf("signed form: token of %d bytes, %d warnings; want over %d, none", n, warned(), sipModuleTokenLimit)
	}
	long := bytes.Repeat([]byte("c"), 300)
	if n := call(TokensCASigned, long); n <= sipModuleTokenLimit {
		t.Fatalf("300-byte Call-ID: token of %d bytes, want over %d", n, sipModuleTokenLimit)
	}
	call(TokensCASigned, long)
	if warned() != 1 {
		t.Fatalf("%d warnings for two oversized tokens in one interval, want 1", warned())
	}
	e := logs.FilterMessageSnippet("larger than").All()[0]
	if f := e.ContextMap(); f["call_id_bytes"] != int64(300) || f["limit"] != int64(sipModuleTokenLimit) || !strings.Contains(e.Message, "ca_signed") {
		t.Errorf("warning fields %v", f)
	}
}
