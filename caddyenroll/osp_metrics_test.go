package caddyenroll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// failingStores is a storage whose Stores of keys containing part fail.
type failingStores struct {
	certmagic.Storage
	part string
}

func (s failingStores) Store(ctx context.Context, key string, value []byte) error {
	if strings.Contains(key, s.part) {
		return errors.New("disk full")
	}
	return s.Storage.Store(ctx, key, value)
}

// ospFixture is an OSP handler over a minimal app whose file has the
// device gw1.example, identified by the source address 192.0.2.1.
type ospFixture struct {
	t *testing.T
	h *OSPHandler
	a *App
}

func newOSPFixture(t *testing.T) *ospFixture {
	t.Helper()
	cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" disabled enrolled\n")
	st := localLocks{failingStores{Storage: &certmagic.FileStorage{Path: t.TempDir()}, part: "/666-"}}
	a := &App{storage: st, state: newStateStore(st, time.Hour), cfg: cs, log: zap.NewNop(),
		authz: &authz{revocations: new(revocations)}}
	var err error
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	initMetrics()
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{netip.MustParseAddr("192.0.2.1"): "gw1.example", netip.MustParseAddr("192.0.2.2"): "gw2.example"}}
	return &ospFixture{t: t, h: h, a: a}
}

func (f *ospFixture) setFlags(fl flags) { f.a.cfg.flagsNow.Store(&fl) }

// post sends body from remote (host:port) over plain HTTP and returns the
// HTTP status and answer.
func (f *ospFixture) post(body []byte, remote string) (int, string) {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/osp", bytes.NewReader(body))
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	err := f.h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode, he.Error()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return w.Code, w.Body.String()
}

// usageBody is a usage indication of one record per transaction id.
func usageBody(t *testing.T, txs ...uint64) []byte {
	t.Helper()
	ind := &osp.UsageIndication{MessageID: "7"}
	for i, tx := range txs {
		ind.Usages = append(ind.Usages, osp.Usage{ComponentID: fmt.Sprint(i + 1), Timestamp: time.Now().UTC(), Role: "source",
			TransactionID: tx, CallID: []byte("call"), SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, Duration: time.Second,
			StartTime: time.Now().UTC().Add(-time.Minute), EndTime: time.Now().UTC()})
	}
	b, err := ind.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ospCounts reads the OSP counters by metric and label value.
func ospCounts() map[string]float64 {
	out := map[string]float64{}
	for _, c := range []struct {
		name   string
		vec    *prometheus.CounterVec
		values []string
	}{
		{"authz", metrics.authz, []string{"ssl_required"}},
		{"usage", metrics.usage, []string{"ssl_required", "unauthorized", "not_stored", "stored", "duplicate", "error"}},
		{"refused", metrics.ospRefused, []string{"too_large", "unreadable", "malformed"}},
	} {
		for _, v := range c.values {
			out[c.name+"/"+v] = promtest.ToFloat64(c.vec.WithLabelValues(v))
		}
	}
	return out
}

// OSP messages refused before they are handled are counted, usage by the
// record whatever its outcome, and an indication refused for plain HTTP as
// usage, not as an authorization.
func TestOSPMetrics(t *testing.T) {
	f := newOSPFixture(t)
	auth := authRequestBody(t)
	noDest, err := (&osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	big := append([]byte("<?xml version=\"1.0\"?>\n<Message>"), bytes.Repeat([]byte(" "), osp.DefaultLimits.MaxBytes)...)
	const gw1, gw2, stranger = "192.0.2.1:5060", "192.0.2.2:5060", "198.51.100.9:5060"
	for _, c := range []struct {
		name  string
		flags flags
		body  []byte
		from  string
		code  int
		want  map[string]float64 // counter changes
	}{
		{"too large", flags{}, big, gw1, 413, map[string]float64{"refused/too_large": 1}},
		{"not OSP", flags{}, []byte("<Message>"), gw1, 400, map[string]float64{"refused/malformed": 1}},
		{"invalid authorization", flags{}, noDest, gw1, 200, map[string]float64{"refused/malformed": 1}},
		{"usage over plain HTTP", flags{SSL: true, CDRs: true}, usageBody(t, 1, 2, 3), gw1, 200, map[string]float64{"usage/ssl_required": 3}},
		{"authorization over plain HTTP", flags{SSL: true}, auth, gw1, 200, map[string]float64{"authz/ssl_required": 1}},
		{"usage of an unidentified device", flags{CDRs: true}, usageBody(t, 1, 2), stranger, 200, map[string]float64{"usage/unauthorized": 2}},
		{"usage of a disabled device", flags{CDRs: true}, usageBody(t, 1, 2), gw2, 200, map[string]float64{"usage/unauthorized": 2}},
		{"usage not stored", flags{}, usageBody(t, 1, 2), gw1, 200, map[string]float64{"usage/not_stored": 2}},
		{"usage stored", flags{CDRs: true}, usageBody(t, 1, 2), gw1, 200, map[string]float64{"usage/stored": 2}},
		{"usage again", flags{CDRs: true}, usageBody(t, 1, 2, 3), gw1, 200, map[string]float64{"usage/duplicate": 2, "usage/stored": 1}},
		{"usage failing", flags{CDRs: true}, usageBody(t, 4, 666, 5), gw1, 200, map[string]float64{"usage/stored": 1, "usage/error": 2}},
	} {
		f.setFlags(c.flags)
		before := ospCounts()
		code, body := f.post(c.body, c.from)
		if code != c.code {
			t.Errorf("%s: HTTP %d, want %d: %.200s", c.name, code, c.code, body)
		}
		after := ospCounts()
		for k := range after {
			if d := after[k] - before[k]; d != c.want[k] {
				t.Errorf("%s: %s went up by %v, want %v", c.name, k, d, c.want[k])
			}
		}
	}
	// a body larger than it said, or of unknown length, is too large too
	r := httptest.NewRequest(http.MethodPost, "/osp", bytes.NewReader(big))
	r.ContentLength = -1
	before := ospCounts()["refused/too_large"]
	err = f.h.ServeHTTP(httptest.NewRecorder(), r, nil)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 413 || ospCounts()["refused/too_large"] != before+1 {
		t.Errorf("a body of unknown length over the bound: %v, counted %v", err, ospCounts()["refused/too_large"]-before)
	}
	descs := make(chan *prometheus.Desc, 1)
	metrics.usage.Describe(descs)
	if d := (<-descs).String(); !strings.Contains(d, "OSP usage records") {
		t.Errorf("the usage counter's help does not say its unit: %s", d)
	}
}

func authRequestBody(t *testing.T) []byte {
	t.Helper()
	b, err := (&osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs: [][]byte{[]byte("call")}, SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With `cdrs disabled` every usage record is confirmed (status 200) and
// none is stored; with `cdrs enabled` they are stored.
func TestUsageConfirmedNotStoredWhenCDRsDisabled(t *testing.T) {
	f := newOSPFixture(t)
	cdrsStored := func() int {
		keys, err := f.a.storage.List(context.Background(), cdrsPrefix(), true)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		n := 0
		for _, k := range keys {
			if strings.HasSuffix(k, ".json") {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		cdrs   bool
		stored int
	}{{false, 0}, {true, 2}} {
		f.setFlags(flags{CDRs: c.cdrs})
		code, body := f.post(usageBody(t, 11, 12), "192.0.2.1:5060")
		if code != 200 {
			t.Fatalf("cdrs %v: HTTP %d %s", c.cdrs, code, body)
		}
		cnf, err := osp.ParseUsageConfirmation([]byte(body))
		if err != nil {
			t.Fatalf("cdrs %v: %v: %.300s", c.cdrs, err, body)
		}
		if len(cnf.Confirmations) != 2 {
			t.Fatalf("cdrs %v: %d confirmations, want 2", c.cdrs, len(cnf.Confirmations))
		}
		for _, x := range cnf.Confirmations {
			if !x.Status.OK() {
				t.Errorf("cdrs %v: component %s confirmed with status %v", c.cdrs, x.ComponentID, x.Status)
			}
		}
		if n := cdrsStored(); n != c.stored {
			t.Errorf("cdrs %v: %d records in storage, want %d", c.cdrs, n, c.stored)
		}
	}
}

// A capabilities indication is confirmed to the devices that may take part
// in calls, as usage is: an unidentified device, and one the operator
// disabled (whichever way it is identified), gets 401.
func TestCapabilitiesOfUsableDevicesOnly(t *testing.T) {
	f := newOSPFixture(t)
	f.setFlags(flags{})
	capab, err := (&osp.CapabilitiesIndication{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, from string
		status     int
	}{
		{"enabled and enrolled", "192.0.2.1:5060", 200},
		{"disabled", "192.0.2.2:5060", 401},
		{"unidentified", "198.51.100.9:5060", 401},
	} {
		code, body := f.post(capab, c.from)
		if code != 200 {
			t.Fatalf("%s: HTTP %d %s", c.name, code, body)
		}
		cnf, err := osp.ParseCapabilitiesConfirmation([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v: %.300s", c.name, err, body)
		}
		if cnf.Status.Code != c.status || cnf.ComponentID != "2" {
			t.Errorf("%s: confirmed %+v, want status %d", c.name, cnf, c.status)
		}
	}
}
