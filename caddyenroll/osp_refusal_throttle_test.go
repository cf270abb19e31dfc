package caddyenroll

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// While a flood of OSP requests from no device has the throttle drop the
// 401 lines, the 401s of requesters that are no usable device (none at
// the address, a disabled device) stay dropped, but a usable device's
// (gw2 asking to extend gw1's call) is logged: it takes a device's
// credentials, and it shared the flood's kind, which dropped it.
func TestOSPUsableDeviceRefusalNotThrottledByFlood(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example", "t.example", "d.example"}
	conf := strings.Replace(reauthSourceConf, "%s", "enabled", 1) + "device d.example acme disabled enrolled\n"
	h := reauthHandler(t, conf, names...)
	from := sourceAddrs(names)
	rsp := authorizeCall(t, h, from["gw1.example"])
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 {
		t.Fatalf("authorization: %v %+v", rsp.Status, rsp.Destinations)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h.log = zap.New(core)
	now := time.Now()
	h.refusals, _ = testThrottle(3, &now)
	const nobody = "198.51.100.9:5060"
	for range 20 {
		postOSP(t, h, usageBody(t, 1), nobody)
	}
	refused := func() []observer.LoggedEntry {
		return logs.FilterMessage("OSP answered").FilterField(zap.Bool("refused", true)).All()
	}
	if n := len(refused()); n != 3 {
		t.Fatalf("%d of the flood's 20 refusals logged, want the throttle's 3", n)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		from   string
		logged bool
	}{
		{"another device's call extended by a usable device", reauthOf(t, rsp.TransactionID, rsp.Destinations[0].Token), from["gw2.example"], true},
		{"usage from no device", usageBody(t, 1), nobody, false},
		{"a call of a disabled device", authRequestBody(t), from["d.example"], false},
	} {
		before := len(refused())
		postOSP(t, h, c.body, c.from)
		after := refused()
		if logged := len(after) > before; logged != c.logged {
			t.Errorf("%s: refusal logged %v, want %v", c.name, logged, c.logged)
			continue
		}
		if c.logged {
			if got := after[len(after)-1].ContextMap()["outcome"]; got != "unauthorized" {
				t.Errorf("%s: outcome %v, want unauthorized", c.name, got)
			}
		}
	}
}
