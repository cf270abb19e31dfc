package caddyenroll

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// A request body is read strictly: a mistyped field is refused (400), not
// ignored while the action goes ahead without it, so is a field given
// twice (which one counts?), and a body larger than
// the admin API reads is refused (413), not cut and decoded in part.
func TestAdminBodyIsStrict(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	ad := &adminAPI{app: f.app, log: zap.NewNop()}
	serial := f.enroll(f.local, "gw1.example")

	// "reson": the operator meant keyCompromise; revoking without it
	// records no compromise (the key may enroll again)
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"serial": "`+serial+`", "reson": 1}`); code != 400 || !strings.Contains(body, `unknown field "reson"`) {
		t.Errorf("revoke with a mistyped field: %d %s, want 400 naming it", code, body)
	}
	rec, err := f.local.Lookup(f.ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revoked {
		t.Fatalf("a refused revoke revoked %s (reason %d)", serial, rec.Reason)
	}
	for _, c := range []struct {
		uri, body, want string
	}{
		{"/enroll/approve/0123456789abcdef0123456789abcdef", `{"grop": "ACME ITSP"}`, `unknown field "grop"`},
		{"/enroll/approve/0123456789abcdef0123456789abcdef", `{"reason": "ok"}`, `unknown field "reason"`},
		{"/enroll/reject/0123456789abcdef0123456789abcdef", `{"group": "ACME ITSP"}`, `unknown field "group"`},
		{"/enroll/reject/0123456789abcdef0123456789abcdef", `{"reason": "a"} {"reason": "b"}`, "after the JSON value"},
		{"/enroll/revoke", `{"serial": "` + serial + `"}` + strings.Repeat(" ", 64<<10) + `trailing`, "larger than 65536 bytes"},
		{"/enroll/revoke", `{"serial": "` + serial + `"}` + strings.Repeat(" ", 64<<10), "larger than 65536 bytes"},
		// a field given twice: the last one was taken, silently, whatever
		// the first said (Go's decoder matches names case-insensitively,
		// "ſ" folding to "s", so these are the same field)
		{"/enroll/revoke", `{"serial": "ff", "serial": "` + serial + `"}`, `field "serial" given twice`},
		{"/enroll/revoke", `{"serial": "` + serial + `", "reason": 0, "Reason": 1}`, `field "Reason" given twice`},
		{"/enroll/revoke", `{"ſerial": "ff", "SERIAL": "` + serial + `"}`, `field "SERIAL" given twice`},
		{"/enroll/reject/0123456789abcdef0123456789abcdef", `{"reason": "a", "reason": "b"}`, `field "reason" given twice`},
		// a sign is not a separator: -1 is no reason (it was a 500)
		{"/enroll/revoke", `{"serial": "` + serial + `", "reason": -1}`, "unsupported revocation reason"},
		{"/enroll/revoke", `{"device": "gw1.example", "reason": -4}`, "unsupported revocation reason"},
		// a purge takes no body: one with fields is a mistake, nothing is deleted
		{"DELETE /enroll/cdrs?before=2025-01-01", `{"before": "2030-01-01"}`, `unknown field "before"`},
		{"DELETE /enroll/cdrs?before=2025-01-01", `purge`, "decoding JSON body"},
		{"DELETE /enroll/cdrs?before=2025-01-01", strings.Repeat(" ", 64<<10+1), "larger than 65536 bytes"},
	} {
		method, uri := "POST", c.uri
		if m, u, ok := strings.Cut(c.uri, " "); ok {
			method, uri = m, u
		}
		code, body, _ := adminDoBody(t, ad, method, uri, c.body)
		want := 400
		if strings.Contains(c.want, "larger") {
			want = 413
		}
		if code != want || !strings.Contains(body, c.want) {
			short := c.body
			if len(short) > 80 {
				short = short[:80] + "…"
			}
			t.Errorf("%s %s: %d %s, want %d with %q", c.uri, short, code, body, want, c.want)
		}
	}
	if rec, err := f.local.Lookup(f.ctx, serial); err != nil || rec.Revoked {
		t.Fatalf("a refused revoke revoked %s: %v", serial, err)
	}

	// well-formed bodies still work, and an empty body is no body
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", "{\"serial\": \""+serial+"\", \"reason\": 1}\n"); code != 200 || !strings.Contains(body, serial) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if rec, err := f.local.Lookup(f.ctx, serial); err != nil || !rec.Revoked || rec.Reason != 1 {
		t.Fatalf("after revoke: %+v %v", rec, err)
	}
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/reject/0123456789abcdef0123456789abcdef", ""); code != 404 {
		t.Errorf("reject of an unknown id without a body: %d %s, want 404", code, body)
	}
}

// Query parameters are read strictly too: one a route does not take, or
// one given twice, is refused (400), so a mistyped ?sinc= does not export
// every record nor ?befor= fall back to anything.
func TestAdminQueryIsStrict(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	ad := &adminAPI{app: f.app, log: zap.NewNop()}
	for _, c := range []struct {
		method, uri string
		code        int
		want        string
	}{
		{"GET", "/enroll/cdrs?sinc=2025-01-01", 400, `unknown query parameter "sinc" (/enroll/cdrs takes since, until, format)`},
		{"GET", "/enroll/cdrs?since=2025-01-01&since=2025-02-01", 400, `query parameter "since" given 2 times`},
		{"DELETE", "/enroll/cdrs?befor=2025-01-01", 400, `unknown query parameter "befor" (/enroll/cdrs takes before)`},
		{"GET", "/enroll/requests?status=pending", 400, `unknown query parameter "status"`},
		{"GET", "/enroll/pending?state=issued", 400, `unknown query parameter "state" (/enroll/pending takes limit, after)`},
		{"GET", "/enroll/devices?device=gw1.example", 400, `unknown query parameter "device" (/enroll/devices takes limit, after)`},
		{"GET", "/enroll/devices?limit=0", 400, "limit must be a number from 1 to 10000"},
		{"GET", "/enroll/ca?profile=legacy", 400, "takes no query parameters"},
		{"GET", "/enroll/cdrs?since=%zz", 400, "query: invalid URL escape"},
		// what the routes take, and the CLI and Link headers send
		{"GET", "/enroll/cdrs?since=2025-01-01&until=2025-01-31&format=csv", 200, ""},
		{"GET", "/enroll/requests?state=pending&limit=10&after=00", 200, "[]"},
		{"GET", "/enroll/pending?limit=10", 200, "[]"},
	} {
		code, body, _ := adminDoBody(t, ad, c.method, c.uri, "")
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.uri, code, body, c.code, c.want)
		}
	}
}

// A 405 names the methods the route takes (RFC 9110).
func TestAdminMethodNotAllowed(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	ad := &adminAPI{app: f.app, log: zap.NewNop()}
	for _, c := range []struct{ method, uri, allow string }{
		{"POST", "/enroll/pending", "GET"},
		{"GET", "/enroll/approve/0123456789abcdef", "POST"},
		{"PUT", "/enroll/cdrs", "GET, DELETE"},
		{"DELETE", "/enroll/devices", "GET"},
	} {
		code, body, hdr := adminDo(t, ad, c.method, c.uri)
		if code != 405 || hdr.Get("Allow") != c.allow || !strings.Contains(body, "method not allowed: "+c.method) {
			t.Errorf("%s %s: %d %s, Allow %q; want 405, Allow %q", c.method, c.uri, code, body, hdr.Get("Allow"), c.allow)
		}
	}
}
