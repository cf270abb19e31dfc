package caddyenroll

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// loginTestHandler is an enrollment handler with one account, ops with
// password "right", limiters allowing accountFree and addressFree
// failures, and its logs observed.
func loginTestHandler(t *testing.T, accountFree, addressFree int) (*Handler, *observer.ObservedLogs) {
	t.Helper()
	cs, _, _ := testConfigState(t, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "ops", Password: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	initMetrics()
	a := &App{cfg: cs, accounts: accts, log: log, known: newKnownAddresses(),
		limiter: newLimiter(accountFree, time.Minute, time.Hour), addrLimiter: newLimiter(addressFree, time.Minute, time.Hour)}
	return &Handler{Profile: profileModern, ContentType: "text/html", MaxBody: wire.MaxBody, app: a, log: log}, logs
}

// retrieveAs sends h a retrieve (no CSR: status 2 once the credentials
// pass) for username and password from the client address from.
func retrieveAs(t *testing.T, h *Handler, from, username, password string) *wire.Response {
	t.Helper()
	return postForm(t, h, from, url.Values{"operation": {"retrieve"}, "nonce": {"1"}, "username": {username}, "password": {password},
		"device": {"1"}, "customer": {"0"}})
}

// postForm posts form to h from the client address from and decodes the
// answer.
func postForm(t *testing.T, h *Handler, from string, form url.Values) *wire.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	r.RemoteAddr = from + ":40000"
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	ans, err := wire.DecodeResponse(w.Body.Bytes())
	if err != nil {
		t.Fatalf("%v: %s", err, w.Body.String())
	}
	return ans
}

// Enrollment logs: a username that is no account's is logged hashed (it may
// be a password typed in the wrong field); attempts refused by a lockout
// are at debug, and a lockout is logged once, when it starts.
func TestEnrollmentLogLevels(t *testing.T) {
	h, logs := loginTestHandler(t, 1, 4)
	try := func(username string) int {
		t.Helper()
		return retrieveAs(t, h, "203.0.113.9", username, "wrong").Status
	}
	const typo = "correct horse battery staple"
	for i, c := range []struct {
		username string
		status   int
	}{
		{typo, wire.StatusBadCredentials},  // its own lockout starts (1 failure allowed)
		{"ops", wire.StatusBadCredentials}, // ops's lockout starts
		{"ops", wire.StatusRateLimited},
		{"ops", wire.StatusRateLimited},
		{typo, wire.StatusRateLimited},
		{"other", wire.StatusBadCredentials},
		{"another", wire.StatusBadCredentials}, // the address's fourth failure: its lockout starts
		{"ops", wire.StatusRateLimited},
		{"yet another", wire.StatusRateLimited},
	} {
		if st := try(c.username); st != c.status {
			t.Fatalf("attempt %d (%s): status %d, want %d", i, c.username, st, c.status)
		}
	}
	hashRE := regexp.MustCompile(`^[0-9a-f]{12}$`)
	hashes := map[string]bool{}
	var typoHash string
	for _, e := range logs.FilterMessage("enrollment refused").All() {
		f := e.ContextMap()
		st := f["status"].(int64)
		if want := map[bool]zapcore.Level{true: zapcore.DebugLevel, false: zapcore.InfoLevel}[st == wire.StatusRateLimited]; e.Level != want {
			t.Errorf("status %d logged at %s, want %s", st, e.Level, want)
		}
		u, named := f["username"].(string)
		hu, hashed := f["username_hash"].(string)
		switch {
		case named && u == "ops" && !hashed:
		case hashed && !named && hashRE.MatchString(hu):
			hashes[hu] = true
			if st == wire.StatusBadCredentials && typoHash == "" {
				typoHash = hu
			}
		default:
			t.Errorf("refusal names its user %+v", f)
		}
	}
	if len(hashes) != 4 {
		t.Errorf("%d hashes for 4 unknown names: %v", len(hashes), hashes)
	}
	var locks []string
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "horse") || strings.Contains(e.Message, "horse") {
				t.Errorf("%q logged the unknown username in %s: %+v", e.Message, k, e.ContextMap())
			}
		}
		if strings.Contains(e.Message, "locked out") {
			f := e.ContextMap()
			if e.Level != zapcore.WarnLevel || f["lockout"] != time.Minute {
				t.Errorf("lockout logged %s %+v", e.Level, f)
			}
			locks = append(locks, e.Message+" "+str(f["username"])+str(f["username_hash"])+str(f["address"]))
		}
	}
	want := []string{"username locked out after failed logins " + typoHash, "username locked out after failed logins ops",
		"username locked out after failed logins " + hashOf(h.app.accounts, "other"), "username locked out after failed logins " + hashOf(h.app.accounts, "another"),
		"client address locked out after failed logins 203.0.113.9"}
	if strings.Join(locks, "\n") != strings.Join(want, "\n") {
		t.Errorf("lockouts logged:\n%s\nwant:\n%s", strings.Join(locks, "\n"), strings.Join(want, "\n"))
	}
}

// The reproduction of the lockout denial of service, through the handler:
// five wrong passwords from one address lock the account out, and the right
// one still logs in from an address that logged in to it before (status 2:
// the credentials passed, the request lacks its CSR), not from another.
// Wrong passwords from a known address lock the account out there, logged
// once as such, without locking it out elsewhere.
func TestLockoutSparesKnownAddresses(t *testing.T) {
	h, logs := loginTestHandler(t, 5, 4*5)
	const known, other, guesser = "127.0.0.2", "127.0.0.4", "127.0.0.3"
	for i, c := range []struct {
		from, password string
		status         int
	}{
		{known, "right", wire.StatusBadRequest},
		{other, "right", wire.StatusBadRequest},
		{guesser, "wrong", wire.StatusBadCredentials},
		{guesser, "wrong", wire.StatusBadCredentials},
		{guesser, "wrong", wire.StatusBadCredentials},
		{guesser, "wrong", wire.StatusBadCredentials},
		{guesser, "wrong", wire.StatusBadCredentials}, // the account's lockout starts
		{guesser, "right", wire.StatusRateLimited},
		{"127.0.0.5", "right", wire.StatusRateLimited}, // unknown: locked out
		{known, "right", wire.StatusBadRequest},        // the fix
		{known, "right", wire.StatusBadRequest},
		{other, "wrong", wire.StatusBadCredentials}, // a guesser at a known address
		{other, "wrong", wire.StatusBadCredentials},
		{other, "wrong", wire.StatusBadCredentials},
		{other, "wrong", wire.StatusBadCredentials},
		{other, "wrong", wire.StatusBadCredentials}, // locked out there
		{other, "right", wire.StatusRateLimited},
		{known, "right", wire.StatusBadRequest},
		{"127.0.0.5", "right", wire.StatusRateLimited},
	} {
		ans := retrieveAs(t, h, c.from, "ops", c.password)
		if ans.Status != c.status {
			t.Fatalf("attempt %d (%s from %s): status %d %q, want %d", i, c.password, c.from, ans.Status, ans.Error, c.status)
		}
	}
	var locks []string
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "locked out") {
			f := e.ContextMap()
			locks = append(locks, e.Message+" "+str(f["username"])+" "+str(f["address"])+" "+str(f["client"]))
		}
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok && (s == "right" || s == "wrong") {
				t.Errorf("%q logged a password: %+v", e.Message, e.ContextMap())
			}
		}
	}
	want := []string{"username locked out after failed logins ops  " + guesser,
		"username locked out at a known address after failed logins ops " + other + " " + other}
	if strings.Join(locks, "\n") != strings.Join(want, "\n") {
		t.Errorf("lockouts logged:\n%s\nwant:\n%s", strings.Join(locks, "\n"), strings.Join(want, "\n"))
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func hashOf(a *accounts, username string) string {
	return a.logField(username).String
}

// OSP: a refused usage indication or capabilities indication (the device
// is not identified) is logged at info, as refused authorizations are; an
// answered one at debug.
func TestOSPRefusalsLoggedAtInfo(t *testing.T) {
	f := newOSPFixture(t)
	core, logs := observer.New(zapcore.DebugLevel)
	f.h.log = zap.New(core)
	capab, err := (&osp.CapabilitiesIndication{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const gw1, stranger = "192.0.2.1:5060", "198.51.100.9:5060"
	for _, c := range []struct {
		name    string
		body    []byte
		from    string
		level   zapcore.Level
		refused bool
	}{
		{"usage of an unidentified device", usageBody(t, 1), stranger, zapcore.InfoLevel, true},
		{"capabilities of an unidentified device", capab, stranger, zapcore.InfoLevel, true},
		{"usage", usageBody(t, 1), gw1, zapcore.DebugLevel, false},
		{"capabilities", capab, gw1, zapcore.DebugLevel, false},
	} {
		f.setFlags(flags{})
		if code, body := f.post(c.body, c.from); code != 200 {
			t.Fatalf("%s: HTTP %d %s", c.name, code, body)
		}
		all := logs.TakeAll()
		if len(all) != 1 || all[0].Message != "OSP answered" || all[0].Level != c.level || all[0].ContextMap()["refused"] != map[bool]any{true: true, false: nil}[c.refused] {
			t.Errorf("%s: logged %+v, want one line at %s", c.name, all, c.level)
		}
	}
}

// An admin request the caller got wrong is answered with its 4xx status
// and Caddy's error shape, and logged at info, not returned to Caddy (which
// logs every error at error level); server errors still go to Caddy.
func TestAdminRefusalsLoggedAtInfo(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ad := &adminAPI{app: &App{}, log: zap.New(core)}
	for _, c := range []struct {
		method, uri string
		code        int
		want        string
	}{
		{"GET", "/enroll/nowhere", 404, "resource not found: /enroll/nowhere"},
		{"GET", "/enroll/certificates/xyz", 400, `ca: invalid serial number \"xyz\"`},
	} {
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, httptest.NewRequest(c.method, c.uri, nil)); err != nil {
			t.Fatalf("%s %s returned %v to Caddy", c.method, c.uri, err)
		}
		if rec.Code != c.code || rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"error":"`+c.want) {
			t.Errorf("%s %s: %d %s %q, want %d and a JSON error %q", c.method, c.uri, rec.Code, rec.Header().Get("Content-Type"), rec.Body, c.code, c.want)
		}
	}
	entries := logs.FilterMessage("admin request refused").All()
	if len(entries) != 2 {
		t.Fatalf("%d refusals logged, want 2", len(entries))
	}
	for _, e := range entries {
		if e.Level != zapcore.InfoLevel || e.ContextMap()["status_code"] == nil {
			t.Errorf("refusal logged at %s with %v", e.Level, e.ContextMap())
		}
	}
	// a server error stays Caddy's to answer and log
	fs := &failingLoads{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	st := localLocks{fs}
	c, is := caIssuing(t, st, "gw1.example")
	ad.app = &App{storage: st, state: newStateStore(st, 0), cas: map[string]*ca.CA{profileModern: c}}
	fs.failLoads("/issued/")
	var apiErr caddy.APIError
	if err := ad.serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/enroll/certificates/"+is.Serial, nil)); !errors.As(err, &apiErr) || apiErr.HTTPStatus != 500 {
		t.Errorf("a failing storage: %v, want a 500 for Caddy", err)
	}
}

// Under `ssl enabled`, a request over plain HTTP is refused with status 12
// whatever its body, malformed or not; over TLS a malformed body is 2.
func TestMalformedBodyOverPlainHTTPUnderSSL(t *testing.T) {
	cs, _, _ := testConfigState(t, "ssl enabled\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	a := &App{cfg: cs, log: zap.NewNop()}
	initMetrics()
	h := &Handler{Profile: profileModern, ContentType: "text/html", MaxBody: wire.MaxBody, app: a, log: zap.NewNop()}
	for _, c := range []struct {
		body   string
		tls    bool
		status int
	}{
		{"operation=request&nonce=%zz", false, wire.StatusSSLRequired},
		{"no equals sign", false, wire.StatusSSLRequired},
		{"operation=request&operation=retrieve", false, wire.StatusSSLRequired},
		{"operation=request&nonce=%zz", true, wire.StatusBadRequest},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		ans, err := wire.DecodeResponse(w.Body.Bytes())
		if err != nil || ans.Status != c.status {
			t.Errorf("%q (tls %v): %v %s, want status %d", c.body, c.tls, err, w.Body, c.status)
		}
	}
}
