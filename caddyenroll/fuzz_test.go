package caddyenroll

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// The Caddyfile fuzz targets feed text through caddyfile.NewTestDispenser
// into the parsers this package registers with httpcaddyfile. For every
// input: no panic, and every error names its place (", at Testfile:N", as
// the Dispenser's errors do). For an accepted one: each line of the block
// follows the grammar of the parser's doc comment (an option the parser
// knows, with as many arguments as it takes: a flag followed by another
// option on its line must not set both), and the config survives Caddy's
// JSON round trip: it marshals, decodes strictly (as Caddy loads modules,
// unknown fields refused) to an equal value and marshals again to the same
// bytes.

// FuzzCaddyfileEnrollOption fuzzes the global `enroll` option.
func FuzzCaddyfileEnrollOption(f *testing.F) {
	for _, s := range shippedBlocks(f, "enroll") {
		f.Add(s)
	}
	for _, s := range enrollOptionSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d := fuzzDispenser(src, "enroll")
		if d == nil {
			return
		}
		v, err := parseGlobalOption(d, nil)
		if err != nil {
			checkCaddyfileErr(t, err)
			return
		}
		checkGrammar(t, src, enrollOptionGrammar)
		opt, ok := v.(httpcaddyfile.App)
		if !ok || opt.Name != "enroll" {
			t.Fatalf("parsed into %#v, want the enroll app", v)
		}
		var app App
		if err := caddy.StrictUnmarshalJSON(opt.Value, &app); err != nil {
			t.Fatalf("the app's JSON %q does not load: %v", opt.Value, err)
		}
		if b := checkJSONRoundTrip(t, &app); !bytes.Equal(b, opt.Value) {
			t.Fatalf("JSON differs once loaded:\n%s\n%s", opt.Value, b)
		}
		for profile, auth := range app.Authorities {
			if (profile != profileModern && profile != profileLegacy) || auth == nil {
				t.Fatalf("authority %q: %+v", profile, auth)
			}
		}
		keys := make(map[string]string)
		for name := range app.DeviceAddresses {
			if other, dup := keys[configfile.DeviceKey(name)]; dup {
				t.Fatalf("device_address names one device twice: %q and %q", other, name)
			}
			keys[configfile.DeviceKey(name)] = name
		}
		// the Caddyfile takes what Provision would refuse as little
		if err := app.validateDestinations(); err != nil {
			t.Fatalf("parsed destination settings Provision refuses: %v", err)
		}
		// the option once more, as a second block of the global options
		if _, err := parseGlobalOption(fuzzDispenser(src, "enroll"), v); err == nil || !strings.Contains(err.Error(), "may appear only once") {
			t.Fatalf("a second enroll option: error %v, want one saying it may appear only once", err)
		}
	})
}

// FuzzCaddyfileEnrollDirective fuzzes the `enroll` site directive.
func FuzzCaddyfileEnrollDirective(f *testing.F) {
	for _, s := range shippedBlocks(f, "enroll") {
		f.Add(s)
	}
	for _, s := range enrollDirectiveSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d := fuzzDispenser(src, "enroll")
		if d == nil {
			return
		}
		h, err := parseHandlerDirective(httpcaddyfile.Helper{Dispenser: d})
		if err != nil {
			checkCaddyfileErr(t, err)
			return
		}
		checkGrammar(t, src, enrollDirectiveGrammar)
		hd, ok := h.(*Handler)
		if !ok {
			t.Fatalf("parsed into %T", h)
		}
		if hd.MaxBody < 0 {
			t.Fatalf("max_body %d: the size written wrapped around", hd.MaxBody)
		}
		checkModuleJSON(t, hd, "handler", "enroll")
	})
}

// FuzzCaddyfileOSPDirective fuzzes the `osp` site directive.
func FuzzCaddyfileOSPDirective(f *testing.F) {
	for _, s := range shippedBlocks(f, "osp") {
		f.Add(s)
	}
	for _, s := range ospDirectiveSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d := fuzzDispenser(src, "osp")
		if d == nil {
			return
		}
		h, err := parseOSPDirective(httpcaddyfile.Helper{Dispenser: d})
		if err != nil {
			checkCaddyfileErr(t, err)
			return
		}
		checkGrammar(t, src, ospDirectiveGrammar)
		hd, ok := h.(*OSPHandler)
		if !ok {
			t.Fatalf("parsed into %T", h)
		}
		checkModuleJSON(t, hd, "handler", "osp")
	})
}

// fuzzDispenser is caddyfile.NewTestDispenser(src) for text that starts
// with the token name, as httpcaddyfile calls the parser registered for it.
// It is nil for text that does not, that the lexer refuses (NewTestDispenser
// would log.Fatal) or that holds an environment placeholder {$…} (which
// would make it depend on the environment).
func fuzzDispenser(src, name string) *caddyfile.Dispenser {
	if strings.Contains(src, "{$") {
		return nil
	}
	tokens, err := caddyfile.Tokenize([]byte(src), "Testfile")
	if err != nil || len(tokens) == 0 || tokens[0].Text != name {
		return nil
	}
	return caddyfile.NewTestDispenser(src)
}

// checkCaddyfileErr fails for an error that does not name its place in the
// Caddyfile.
func checkCaddyfileErr(t *testing.T, err error) {
	t.Helper()
	if !strings.Contains(err.Error(), ", at Testfile:") {
		t.Fatalf("error %q does not name its line", err)
	}
}

// checkModuleJSON checks the JSON httpcaddyfile makes of a handler (with
// its module name under key), and that the handler survives the round trip.
func checkModuleJSON[T any](t *testing.T, v *T, key, name string) {
	t.Helper()
	var warnings []caddyconfig.Warning
	raw := caddyconfig.JSONModuleObject(v, key, name, &warnings)
	var obj map[string]json.RawMessage
	if len(warnings) > 0 || json.Unmarshal(raw, &obj) != nil || string(obj[key]) != strconv.Quote(name) {
		t.Fatalf("module JSON %q (warnings %v), want an object with %s %q", raw, warnings, key, name)
	}
	checkJSONRoundTrip(t, v)
}

// checkJSONRoundTrip checks that v marshals, decodes strictly into an
// equal value and marshals again to the same bytes, which it returns.
func checkJSONRoundTrip[T any](t *testing.T, v *T) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshaling %+v: %v", v, err)
	}
	back := new(T)
	if err := caddy.StrictUnmarshalJSON(b, back); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	if !reflect.DeepEqual(v, back) {
		t.Fatalf("JSON round trip changed the value:\n%+v\n%+v\n(JSON %s)", v, back, b)
	}
	b2, err := json.Marshal(back)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("JSON differs once decoded (%v):\n%s\n%s", err, b, b2)
	}
	return b
}

// grammar is the form of a Caddyfile line as a parser's doc comment gives
// it: how many arguments follow its name, and the options of its block
// (none: it takes no block).
type grammar struct {
	min, max int
	block    map[string]grammar
}

var (
	oneArg  = grammar{1, 1, nil}
	flagArg = grammar{0, 0, nil}

	enrollOptionGrammar = grammar{0, 0, map[string]grammar{
		"config_file": oneArg, "approval": oneArg, "unknown_devices": oneArg, "watch_interval": oneArg,
		"backups": oneArg, "account": {2, 3, nil}, "failures_allowed": oneArg, "lockout": {2, 2, nil},
		"max_destinations": oneArg, "device_address": {2, 2, nil}, "nonce_retention": oneArg,
		"device_protocol": {2, 2, nil}, "non_osp_device": {1, 1 << 20, nil},
		"max_pending": oneArg, "max_pending_per_account": oneArg, "max_issued_per_device": {1, 2, nil},
		"ca": {0, 1, map[string]grammar{
			"algorithm": oneArg, "validity": oneArg, "root_validity": oneArg, "intermediate": flagArg,
			"cert_file": oneArg, "key_file": oneArg, "common_name": oneArg, "organization": oneArg,
			"legacy_csr": oneArg, "allow_rsa1024": flagArg, "server_auth": flagArg, "crl_validity": oneArg,
		}},
	}}
	enrollDirectiveGrammar = grammar{0, 1, map[string]grammar{
		"profile": oneArg, "content_type": oneArg, "plain_getcacert": flagArg, "max_body": oneArg,
	}}
	ospDirectiveGrammar = grammar{0, 0, map[string]grammar{
		"tokens": oneArg, "profile": oneArg, "token_validity": oneArg, "max_destinations": oneArg,
		"source_address": {2, 2, nil}, "plain_http": flagArg,
	}}
)

// checkGrammar walks the directive src starts with, line by line, as g
// describes it, and fails at a line that does not follow g: the parser that
// accepted src read that line otherwise.
func checkGrammar(t *testing.T, src string, g grammar) {
	t.Helper()
	d := caddyfile.NewTestDispenser(src)
	d.Next()
	walkGrammar(t, d, g)
}

func walkGrammar(t *testing.T, d *caddyfile.Dispenser, g grammar) {
	t.Helper()
	name, line := d.Val(), d.Line()
	if args := d.RemainingArgs(); len(args) < g.min || len(args) > g.max {
		t.Fatalf("accepted line %d: %s with the arguments %q, which takes %d to %d", line, name, args, g.min, g.max)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub, ok := g.block[d.Val()]
		if !ok {
			t.Fatalf("accepted line %d: %q is not an option of %s", d.Line(), d.Val(), name)
		}
		walkGrammar(t, d, sub)
	}
}

// shippedBlocks returns the directives named name in the shipped
// Caddyfiles, with their blocks: the real configurations, as seeds.
func shippedBlocks(f *testing.F, name string) []string {
	var out []string
	for _, file := range []string{"Caddyfile.example", "examples/legacy.Caddyfile"} {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), file))
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			fields := strings.Fields(lines[i])
			if len(fields) == 0 || fields[0] != name {
				continue
			}
			if fields[len(fields)-1] != "{" {
				out = append(out, strings.TrimSpace(lines[i]))
				continue
			}
			end := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))] + "}"
			j := i + 1
			for j < len(lines) && lines[j] != end {
				j++
			}
			out = append(out, strings.Join(lines[i:min(j+1, len(lines))], "\n"))
			i = j
		}
	}
	if len(out) == 0 {
		f.Fatalf("no %s directive in the shipped Caddyfiles", name)
	}
	return out
}

// Seeds from the snippets of this package's tests (caddyfile_test.go,
// the e2e servers, command_test.go), every option at least once.
var (
	enrollOptionSeeds = []string{
		"enroll {\n\tconfig_file clearinghouse.conf\n\tapproval auto\n\tunknown_devices pending\n\twatch_interval 100ms\n" +
			"\taccount demo $2a$14$DEQCkuRweCXmh7FADLuice9EFTfE.7WnI618qfijP/Y4c4mE/Whve\n" +
			"\taccount cust $2a$14$DEQCkuRweCXmh7FADLuice9EFTfE.7WnI618qfijP/Y4c4mE/Whve 1000\n\tca modern\n}",
		"enroll {\n\tconfig_file clearinghouse.conf\n\tnonce_retention 7d\n}",
		"enroll {\n\tconfig_file a.conf\n\tmax_pending 10\n\tmax_pending_per_account 2\n\tmax_issued_per_device 3 1d\n}",
		"enroll {\n\tmax_issued_per_device 3\n\tmax_issued_per_device 4 1h\n}",
		"enroll {\n\tconfig_file a.conf\n\tbackups 3\n\tfailures_allowed -3\n\tlockout 1s 1m\n\tmax_destinations 5\n}",
		"enroll {\n\tdevice_address gw1 192.0.2.1\n\tdevice_address GW1 1.2.3.5:5060\n}",
		"enroll {\n\tdevice_address gw1 1.2.3.4:99999\n\tdevice_address [2001:db8::1] [2001:db8::2]:5061\n}",
		"enroll {\n\tdevice_protocol gw1 h323-Q931\n\tdevice_protocol GW1 iax\n\tnon_osp_device gw2 gw3\n\tnon_osp_device GW2\n}",
		"enroll {\n\tapproval manual\n\tapproval auto\n}",
		"enroll {\n\tconfig_file a.conf\n\taccount a h\n\taccount b h\n\tdevice_address gw1 192.0.2.1\n\tdevice_address gw2 192.0.2.2\n\tca modern\n\tca legacy\n}",
		"enroll {\n\tca {\n\t\talgorithm p256\n\t\tvalidity 1d\n\t\talgorithm p384\n\t}\n}",
		"enroll {\n\tca modern {\n\t\talgorithm p256\n\t}\n\tca legacy {\n\t\talgorithm rsa2048\n\t}\n}",
		"enroll {\n\tca legacy {\n\t\talgorithm rsa2048\n\t\tvalidity 90d\n\t\troot_validity 3650d\n\t\tcert_file ca.pem\n\t\tkey_file ca.key\n" +
			"\t\tcommon_name \"Legacy CA\"\n\t\torganization Clearinghouse\n\t\tlegacy_csr on\n\t\tallow_rsa1024\n\t\tcrl_validity 7d\n\t}\n" +
			"\tca modern {\n\t\tintermediate\n\t\tserver_auth\n\t\tlegacy_csr off\n\t}\n}",
	}
	enrollDirectiveSeeds = []string{
		"enroll",
		"enroll modern",
		"enroll {\n\tplain_getcacert\n}",
		"enroll {\n\tmax_body 2MiB\n}",
		"enroll legacy {\n\tcontent_type text/plain\n\tmax_body 64KiB\n}",
		"enroll {\n\tprofile legacy\n\tcontent_type text/html\n\tplain_getcacert\n\tmax_body 1024\n}",
		"enroll legacy {\n\tprofile modern\n}",
	}
	ospDirectiveSeeds = []string{
		"osp",
		"osp {\n\ttoken_validity 30s\n}",
		"osp {\n\tsource_address 127.0.0.1 device4.carrier.com\n}",
		"osp {\n\tsource_address 192.0.2.10 device4.carrier.com\n\tplain_http\n}",
		"osp {\n\ttokens unsigned\n\tprofile legacy\n\tmax_destinations 3\n\tsource_address ::1 gw\n}",
		"osp {\n\tsource_address 192.0.2.1 a\n\tsource_address 192.0.2.1 b\n}",
	}
)

// FuzzAdminQuery fuzzes the admin API's query parsers with a query string
// (as r.URL.Query() reads it) and the server's clock (Unix seconds, and a
// UTC offset in minutes). Properties: no panic; an accepted page has a
// limit from 1 to maxPageLimit (the default when none is given), the one
// written, and an after that is a request id in lower case, and its
// rel="next" link reads back the same; an accepted export range has the
// days written, each a bound (a day given is never read as an open bound),
// since not after until; an accepted purge day is the one written and at
// most tomorrow (UTC), and a valid day up to tomorrow is accepted, except
// today in the first minutes after midnight.
func FuzzAdminQuery(f *testing.F) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).Unix()
	for _, q := range []string{
		"", "limit=10", "limit=1&after=00ff", "limit=10000&after=0123456789ABCDEF0123456789abcdef",
		"limit=0", "limit=10001", "limit=+5", "limit=x", "after=xyz", "state=pending&limit=2&after=a1",
		"format=csv&since=2024-03-01&until=2024-03-31", "since=2024-03-02", "until=2024-03-01",
		"since=2024-04-01&until=2024-03-01", "since=2024-02-30", "since=2024-3-1", "since=20240301",
		"before=2024-06-02", "before=2024-06-03", "before=2024-05-01", "before=", "before=2024-13-01",
	} {
		f.Add(q, now, int16(0))
	}
	f.Add("before=2024-06-02", now, int16(14*60))
	f.Add("before=2024-06-01", time.Date(2024, 6, 1, 0, 4, 0, 0, time.UTC).Unix(), int16(0))
	f.Add("before=2024-06-01", time.Date(2024, 6, 1, 23, 30, 0, 0, time.UTC).Unix(), int16(-12*60))
	f.Fuzz(func(t *testing.T, raw string, sec int64, offset int16) {
		q, _ := url.ParseQuery(raw) // as r.URL.Query(), which drops what does not parse

		after, limit, err := pageQuery(q)
		if err == nil {
			checkPage(t, q, after, limit)
		} else if !strings.HasPrefix(err.Error(), "limit ") && !strings.HasPrefix(err.Error(), "after ") {
			t.Fatalf("error %q names neither limit nor after", err)
		}

		if rg, err := cdrRangeQuery(q); err == nil {
			checkDayRange(t, q, rg)
		}

		// a clock from year 1 to 9999, in a zone up to ±18h
		sec = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + nonNegative(sec)%(9999*366*86400)
		clock := time.Unix(sec, 0).In(time.FixedZone("fuzz", int(offset)%(18*60)*60))
		before, err := cdrPurgeQuery(q, clock)
		y, m, d := clock.UTC().Date()
		tomorrow := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		day, dayErr := parseDay(q.Get("before"))
		today := tomorrow.AddDate(0, 0, -1)
		justAfterMidnight := day.Equal(today) && clock.Sub(today) < cdrMidnightWindow
		switch {
		case err == nil && (dayErr != nil || !before.Equal(day) || before.After(tomorrow) || justAfterMidnight):
			t.Fatalf("before=%q at %v: accepted as %v (tomorrow is %v)", q.Get("before"), clock, before, tomorrow)
		case err != nil && dayErr == nil && !day.After(tomorrow) && !justAfterMidnight:
			t.Fatalf("before=%q at %v (tomorrow %v) refused: %v", q.Get("before"), clock, tomorrow, err)
		}
	})
}

func checkPage(t *testing.T, q url.Values, after string, limit int) {
	t.Helper()
	want := defaultPageLimit
	if v := q.Get("limit"); v != "" {
		want, _ = strconv.Atoi(v)
	}
	if limit < 1 || limit > maxPageLimit || limit != want {
		t.Fatalf("limit=%q read as %d", q.Get("limit"), limit)
	}
	if after != strings.ToLower(q.Get("after")) || len(after) > 32 || strings.Trim(after, "0123456789abcdef") != "" {
		t.Fatalf("after=%q read as %q", q.Get("after"), after)
	}
	next := url.Values{"after": {after}, "limit": {strconv.Itoa(limit)}} // as listRequests links it
	nq, err := url.ParseQuery(next.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if a2, l2, err := pageQuery(nq); err != nil || a2 != after || l2 != limit {
		t.Fatalf("the next link %q reads as %q %d %v, want %q %d", next.Encode(), a2, l2, err, after, limit)
	}
}

func checkDayRange(t *testing.T, q url.Values, rg dayRange) {
	t.Helper()
	for _, b := range []struct {
		name string
		day  time.Time
	}{{"since", rg.since}, {"until", rg.until}} {
		v := q.Get(b.name)
		switch {
		case v == "" && !b.day.IsZero():
			t.Fatalf("%s not given, read as %v", b.name, b.day)
		case v == "":
		case b.day.IsZero():
			t.Fatalf("%s=%q read as an open bound", b.name, v)
		case b.day.Format(cdrDayLayout) != v || !b.day.Equal(utcDay(b.day)):
			t.Fatalf("%s=%q read as %v", b.name, v, b.day)
		}
	}
	if q.Get("since") != "" && q.Get("until") != "" && (rg.since.After(rg.until) || !rg.contains(rg.since) || !rg.contains(rg.until)) {
		t.Fatalf("since=%q until=%q accepted as %v to %v", q.Get("since"), q.Get("until"), rg.since, rg.until)
	}
}

func nonNegative(n int64) int64 {
	if n < 0 {
		return -(n + 1) // no overflow at the most negative
	}
	return n
}

// FuzzCaddyfileTLSModules fuzzes the arguments of the TLS modules of the
// enroll app, `trust_pool enroll …` and `verifier enroll …`, as
// client_auth hands them over (the dispenser at the module's name).
func FuzzCaddyfileTLSModules(f *testing.F) {
	for _, s := range []string{"enroll", "enroll modern legacy", "enroll usable", "enroll usable usable",
		"enroll legacy {\n}", "enroll {\n\tusable\n}", "enroll \"usable\" # note"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if d := fuzzDispenser(src, "enroll"); d != nil {
			var p TrustPool
			if err := p.UnmarshalCaddyfile(d); err != nil {
				checkCaddyfileErr(t, err)
			} else {
				checkModuleJSON(t, &p, "provider", "enroll")
			}
		}
		if d := fuzzDispenser(src, "enroll"); d != nil {
			var v ClientVerifier
			if err := v.UnmarshalCaddyfile(d); err != nil {
				checkCaddyfileErr(t, err)
			} else {
				checkModuleJSON(t, &v, "verifier", "enroll")
			}
		}
	})
}
