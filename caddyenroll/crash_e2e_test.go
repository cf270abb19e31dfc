package caddyenroll_test

// A crash-chaos run through a real Caddy (the built binary): simulated
// devices enroll and re-enroll (known devices at once, unknown ones after
// an administrator's decision) while the test kills Caddy with SIGKILL at
// random moments and starts it again on the same storage and configuration
// file, as a supervisor would. Afterwards, with everything quiet, it checks
// what the requirement promises ("a restart, or kill -9 at any moment,
// loses no pending request and no issued certificate"; "a crash at any
// point leaves a consistent state"), see (*crash).check. It runs
// CRASH_DURATION (default 6s) of chaos; CRASH_SEED repeats a run's random
// choices (not its interleaving, nor where the kills land). Under -race,
// Caddy runs with the race detector too unless CRASH_RACE_CADDY=0.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

const crashDefaultDuration = 6 * time.Second

const crashConf = `enroll enabled
routing enabled
cdrs disabled
ssl enabled
group ""
group 'Crash'
device 'gw0.crash.test' 'Crash' enabled
device 'gw1.crash.test' 'Crash' enabled
device 'gw2.crash.test' 'Crash' enabled
device 'gw3.crash.test' "" enabled
`

var crashDevices = []soakDevice{
	{"gw0.crash.test", "1000", "0", "demo", true},
	{"gw1.crash.test", "1001", "0", "demo", true},
	{"gw2.crash.test", "1002", "1000", "cust", true},
	{"gw3.crash.test", "1003", "1000", "cust", true},
	{"new0.crash.test", "2000", "0", "demo", false},
	{"new1.crash.test", "2001", "1000", "cust", false},
	{"new2.crash.test", "2002", "0", "demo", false},
}

// crashKey is a key a device enrolled with, and what it was answered.
type crashKey struct {
	dev     soakDevice
	csr     []byte
	spkiSum string
	nonce   []byte // of its first request
	seq     int    // its place among the device's keys

	// guarded by crash.mu
	pending bool   // answered status 1 at least once
	der     []byte // the certificate it was answered with (status 0)
	serial  string
}

type crash struct {
	t      *testing.T
	s      *server
	client *http.Client
	admin  *http.Client
	caCert *x509.Certificate

	// up and gen tell requests whether the Caddy that answered them is
	// the one they were sent to: gen counts kills, up is false from a
	// kill until the restarted Caddy serves TLS
	upMu sync.Mutex
	upC  *sync.Cond
	up   bool
	gen  int

	mu         sync.Mutex
	violations []string
	keys       []*crashKey
	last       map[string]*crashKey // device → the key last answered a certificate, by the device
	byAdmin    map[string]string    // serial → device, certificates an approval answered
	counts     map[string]int
	resent     int // requests sent again: no answer, or the answering Caddy was killed
	logs       []string
}

func TestCrashChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real Caddy repeatedly")
	}
	dur, seed, bin := randomRun(t, "CRASH", crashDefaultDuration)
	t.Logf("crash chaos: %v, CRASH_SEED=%d", dur, seed)

	// devices enroll again and again: no bound on their certificates
	s := startServer(t, serverOpts{approval: "auto", unknown: "pending", conf: crashConf, bin: bin, extra: "max_issued_per_device 1000000"})
	start := time.Now()
	tlsConf := s.client.Transport.(*http.Transport).TLSClientConfig
	k := &crash{t: t, s: s, up: true,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsConf.Clone(), MaxIdleConnsPerHost: 16}},
		admin:   &http.Client{Timeout: 30 * time.Second},
		last:    map[string]*crashKey{},
		byAdmin: map[string]string{},
		counts:  map[string]int{},
	}
	k.upC = sync.NewCond(&k.upMu)
	k.caCert = s.getCACert()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, d := range crashDevices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.device(d, mrand.New(mrand.NewPCG(seed, uint64(i))), stop)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		k.administrator(mrand.New(mrand.NewPCG(seed, 100)), stop)
	}()

	// the kills, from this goroutine (a failed restart fails the test)
	rng := mrand.New(mrand.NewPCG(seed, 200))
	end := time.Now().Add(dur)
	kills := 0
	for {
		wait := time.Duration(300+rng.IntN(2200)) * time.Millisecond
		if time.Now().Add(wait).After(end) {
			break
		}
		time.Sleep(wait)
		k.upMu.Lock()
		k.up = false
		k.gen++
		k.upMu.Unlock()
		s.Kill()
		kills++
		k.mu.Lock()
		k.logs = append(k.logs, s.Logs())
		k.mu.Unlock()
		killedAt := time.Now()
		s.Restart(s.tlsAddr, s.httpAddr)
		s.waitTLS()
		// (up to ten seconds when the killed Caddy held a storage lock
		// that the new one needs to start: certmagic's file locks are
		// stale ten seconds after their last refresh)
		t.Logf("crash chaos: kill %d at %v, up again after %v", kills, killedAt.Sub(start).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
		k.upMu.Lock()
		k.up = true
		k.upC.Broadcast()
		k.upMu.Unlock()
	}
	time.Sleep(time.Until(end))
	close(stop)
	wg.Wait()

	k.mu.Lock()
	var counts []string
	for c, n := range k.counts {
		counts = append(counts, fmt.Sprintf("%s: %d", c, n))
	}
	sort.Strings(counts)
	t.Logf("crash chaos: %d kills, %d keys, %d requests sent again; answers\n\t%s",
		kills, len(k.keys), k.resent, strings.Join(counts, "\n\t"))
	for _, v := range k.violations {
		t.Error(v)
	}
	k.mu.Unlock()
	if kills == 0 {
		t.Error("no kill happened")
	}
	t.Logf("crash chaos: quiet %v after the start", time.Since(start).Round(time.Millisecond))
	k.check()
	t.Logf("crash chaos: checked %v after the start", time.Since(start).Round(time.Millisecond))
}

func (k *crash) violate(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.violations) < 100 {
		k.violations = append(k.violations, fmt.Sprintf(format, args...))
	}
}

func (k *crash) count(what string) {
	k.mu.Lock()
	k.counts[what]++
	k.mu.Unlock()
}

// begin waits until Caddy is up and returns its generation.
func (k *crash) begin() int {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	for !k.up {
		k.upC.Wait()
	}
	return k.gen
}

// same reports whether the Caddy of generation gen is still the one up:
// an answer received then came from it.
func (k *crash) same(gen int) bool {
	k.upMu.Lock()
	defer k.upMu.Unlock()
	return k.up && k.gen == gen
}

// until retries do until it gets an answer from a Caddy that was up all
// along, for up to a minute (stale storage locks of a killed Caddy keep
// requests waiting up to ten seconds). accept says whether an answer is
// one (else it is retried: a Caddy starting or being killed).
func (k *crash) until(what string, do func() (int, []byte, error), accept func(code int, body []byte) (ok, busy bool)) (int, []byte, bool) {
	deadline := time.Now().Add(time.Minute)
	var last string
	for try := 0; time.Now().Before(deadline); try++ {
		if try > 0 {
			k.mu.Lock()
			k.resent++
			k.mu.Unlock()
			time.Sleep(time.Duration(20+min(try, 10)*20) * time.Millisecond)
		}
		gen := k.begin()
		code, body, err := do()
		ok, busy := false, false
		if err == nil {
			ok, busy = accept(code, body)
		}
		if ok {
			return code, body, true
		}
		if err == nil && !busy && k.same(gen) {
			last = fmt.Sprintf("HTTP %d %.300q", code, body)
			k.violate("%s: %s from a Caddy that was up all along", what, last)
			return code, body, false
		}
		last = fmt.Sprint(err)
		if err == nil {
			last = fmt.Sprintf("HTTP %d %.300q", code, body)
		}
	}
	k.violate("%s: no answer within a minute: %s", what, last)
	return 0, nil, false
}

// post sends a protocol request until it is answered.
func (k *crash) post(what string, r wire.Request) *wire.Response {
	body := wire.EncodeRequest(r)
	var ans *wire.Response
	_, _, ok := k.until(what, func() (int, []byte, error) {
		resp, err := k.client.Post(k.s.https, wire.RequestContentType(r.Operation), bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}, func(code int, b []byte) (bool, bool) {
		if code != http.StatusOK {
			return false, false
		}
		a, err := wire.DecodeResponse(b)
		if err != nil {
			return false, false
		}
		if a.Status == wire.StatusRateLimited {
			return false, true // a login's wait, behind requests on stale locks
		}
		ans = a
		return true, false
	})
	if !ok {
		return nil
	}
	return ans
}

// adminDo calls the admin API until a Caddy that was up all along answers.
func (k *crash) adminDo(method, uri, body string) (int, string, bool) {
	code, b, ok := k.until(method+" "+uri, func() (int, []byte, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, "http://"+k.s.AdminAddr+uri, rd)
		if err != nil {
			return 0, nil, err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := k.admin.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}, func(code int, _ []byte) (bool, bool) { return code < 500 && code != http.StatusNotFound, false })
	if !ok && code == http.StatusNotFound {
		return code, string(b), true // from a Caddy up all along: a real 404
	}
	return code, string(b), ok
}

func (k *crash) newKey(d soakDevice, seq int) *crashKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		k.t.Error(err)
		return nil
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.name}}, key)
	if err != nil {
		k.t.Error(err)
		return nil
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	sum := sha256.Sum256(spki)
	ck := &crashKey{dev: d, csr: csr, spkiSum: hex.EncodeToString(sum[:]), nonce: soakNonce(), seq: seq}
	k.mu.Lock()
	k.keys = append(k.keys, ck)
	k.mu.Unlock()
	return ck
}

func (k *crash) request(key *crashKey, op string, nonce []byte) wire.Request {
	return wire.Request{Operation: op, Nonce: nonce, Username: key.dev.user, Password: "demo-password",
		Device: key.dev.id, Customer: key.dev.customer, CSR: key.csr}
}

// enroll sends a request or retrieve of key until it is answered, checks
// the answer and records it. byDevice: the device's own exchange (not the
// final checks').
func (k *crash) enroll(key *crashKey, op, what string, nonce []byte, byDevice bool) *wire.Response {
	label := fmt.Sprintf("%s %s (%s, key %d)", op, key.dev.name, what, key.seq)
	ans := k.post(label, k.request(key, op, nonce))
	if ans == nil {
		return nil
	}
	k.count(fmt.Sprintf("%s %s %d", map[bool]string{true: "known", false: "unknown"}[key.dev.known], what, ans.Status))
	allowed := []int{wire.StatusOK, wire.StatusPending, wire.StatusRejected}
	if op == wire.OpRetrieve {
		allowed = append(allowed, wire.StatusNotFound)
	}
	if key.dev.known {
		allowed = slices.DeleteFunc(allowed, func(s int) bool { return s == wire.StatusPending })
	}
	if !slices.Contains(allowed, ans.Status) {
		k.violate("%s: status %d %q, want one of %v", label, ans.Status, ans.Error, allowed)
		return ans
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch ans.Status {
	case wire.StatusPending:
		key.pending = true
	case wire.StatusOK:
		cert, err := x509.ParseCertificate(ans.Certificate)
		if err != nil {
			k.violations = append(k.violations, fmt.Sprintf("%s: the certificate does not parse: %v", label, err))
			return ans
		}
		serial := cert.SerialNumber.Text(16)
		switch sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo); {
		case hex.EncodeToString(sum[:]) != key.spkiSum || !strings.EqualFold(cert.Subject.CommonName, key.dev.name):
			k.violations = append(k.violations, fmt.Sprintf("%s: certificate %s is for another key or device", label, serial))
		case key.der != nil && !bytes.Equal(key.der, ans.Certificate):
			k.violations = append(k.violations, fmt.Sprintf("%s: certificate %s, answered %s before", label, serial, key.serial))
		case key.der == nil:
			key.der, key.serial = ans.Certificate, serial
		}
		if byDevice {
			k.last[key.dev.name] = key
		}
	}
	return ans
}

// device plays one device: new keys (re-enrollment), its current key
// again, retrieves, an old key's retrieve. Each exchange is sent again
// until it is answered, as a device would.
func (k *crash) device(d soakDevice, rng *mrand.Rand, stop <-chan struct{}) {
	var keys []*crashKey
	var cur *crashKey
	for !stopped(stop, time.Duration(rng.IntN(40))*time.Millisecond) {
		switch x := rng.IntN(100); {
		case x < 30 || cur == nil:
			key := k.newKey(d, len(keys))
			if key == nil {
				return
			}
			keys = append(keys, key)
			cur = key
			if a := k.enroll(key, wire.OpRequest, "new", key.nonce, true); a == nil || a.Status == wire.StatusRejected {
				cur = nil
			}
		case x < 50:
			if a := k.enroll(cur, wire.OpRequest, "repeat", soakNonce(), true); a == nil || a.Status == wire.StatusRejected {
				cur = nil
			}
		case x < 85:
			nonce := cur.nonce
			if rng.IntN(2) == 0 {
				nonce = soakNonce()
			}
			if a := k.enroll(cur, wire.OpRetrieve, "retrieve", nonce, true); a == nil || a.Status == wire.StatusRejected {
				cur = nil
			}
		default:
			k.enroll(keys[rng.IntN(len(keys))], wire.OpRetrieve, "old retrieve", soakNonce(), true)
		}
	}
}

// administrator approves and rejects pending requests.
func (k *crash) administrator(rng *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop, time.Duration(30+rng.IntN(120))*time.Millisecond) {
		code, body, ok := k.adminDo("GET", "/enroll/pending", "")
		var pending []soakRequest
		if !ok || code != 200 || json.Unmarshal([]byte(body), &pending) != nil {
			k.violate("GET /enroll/pending: %d %.300s", code, body)
			continue
		}
		rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
		for _, p := range pending[:min(len(pending), 2)] {
			if p.State != "pending" || len(p.ID) != 32 {
				k.violate("the pending list has %+v", p)
				continue
			}
			approve := rng.IntN(100) < 70
			uri, body := "/enroll/reject/"+p.ID, `{"reason":"crash chaos"}`
			if approve {
				uri, body = "/enroll/approve/"+p.ID, `{"group":"Crash"}`
			}
			code, out, ok := k.adminDo("POST", uri, body)
			if !ok {
				continue
			}
			k.count(fmt.Sprintf("admin %s %d", strings.Split(uri, "/")[2], code))
			switch {
			case code == 200:
				var r soakRequest
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					k.violate("POST %s: %v: %.300s", uri, err, out)
					continue
				}
				if approve && (r.State != "issued" || r.Serial == "") || !approve && r.State != "rejected" {
					k.violate("POST %s: request now %q with serial %q", uri, r.State, r.Serial)
				}
				if approve {
					n, _ := ca.NormalizeSerial(r.Serial)
					k.mu.Lock()
					k.byAdmin[n] = p.Device
					k.mu.Unlock()
				}
			case code == 409 && strings.Contains(out, "request is "):
				// decided since the listing (superseded, or this very
				// decision, answered by a Caddy killed before its answer
				// arrived)
			default:
				k.violate("POST %s (%s): %d %.300s", uri, p.Device, code, out)
			}
		}
	}
}

// crashCertInfo is a certificate as the admin API shows it.
type crashCertInfo struct {
	Profile  string    `json:"profile"`
	Serial   string    `json:"serial"`
	IssuedAt time.Time `json:"issued_at"`
	Revoked  bool      `json:"revoked"`
	Reason   int       `json:"reason"`
	Device   string    `json:"device"` // GET /enroll/certificates/SERIAL only
}

type crashDeviceInfo struct {
	Name         string          `json:"name"`
	Certificates []crashCertInfo `json:"certificates"`
}

// crashState is what the admin API says once the chaos is over.
type crashState struct {
	file     *configfile.File
	certs    map[string]crashCertInfo // serial → record
	byDevice map[string][]string      // lower-case device → serials
	requests map[string]soakRequest   // lower-case device + "/" + key hash → request
	pending  []soakRequest
}

func (k *crash) get(uri string, v any) bool {
	k.t.Helper()
	code, body, ok := k.adminDo("GET", uri, "")
	if !ok || code != 200 {
		k.t.Errorf("GET %s: %d %.300s", uri, code, body)
		return false
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		k.t.Errorf("GET %s: %v", uri, err)
		return false
	}
	return true
}

func (k *crash) state() *crashState {
	t := k.t
	t.Helper()
	st := &crashState{certs: map[string]crashCertInfo{}, byDevice: map[string][]string{}, requests: map[string]soakRequest{}}
	var err error
	if st.file, err = configfile.ParseFile(k.s.conf); err != nil {
		t.Fatalf("the configuration file does not parse: %v", err)
	}
	add := func(device string, c crashCertInfo) {
		s := normSerial(c.Serial)
		if _, ok := st.certs[s]; ok {
			return
		}
		if c.Device == "" {
			c.Device = device
		}
		st.certs[s] = c
		st.byDevice[strings.ToLower(device)] = append(st.byDevice[strings.ToLower(device)], s)
	}
	var devs []crashDeviceInfo
	k.get("/enroll/devices", &devs)
	for _, d := range devs {
		for _, c := range d.Certificates {
			add(d.Name, c)
		}
	}
	var reqs []soakRequest
	k.get("/enroll/requests?limit=10000", &reqs)
	for _, r := range reqs {
		st.requests[strings.ToLower(r.Device)+"/"+r.PublicKeySHA256] = r
	}
	k.get("/enroll/pending?limit=10000", &st.pending)
	// the certificates answered or named by requests of devices the file
	// does not list
	serials := map[string]bool{}
	k.mu.Lock()
	for _, key := range k.keys {
		if key.serial != "" {
			serials[key.serial] = true
		}
	}
	for s := range k.byAdmin {
		serials[s] = true
	}
	k.mu.Unlock()
	for _, r := range reqs {
		if r.Serial != "" {
			n, _ := ca.NormalizeSerial(r.Serial)
			serials[n] = true
		}
	}
	for s := range serials {
		if _, ok := st.certs[s]; ok {
			continue
		}
		var c crashCertInfo
		if code, body, _ := k.adminDo("GET", "/enroll/certificates/"+s, ""); code == 200 && json.Unmarshal([]byte(body), &c) == nil {
			add(c.Device, c)
		}
	}
	return st
}

// check checks, with the chaos over, what must hold wherever the kills
// landed.
func (k *crash) check() {
	t := k.t
	k.mu.Lock()
	keys := slices.Clone(k.keys)
	byAdmin := cloneMap(k.byAdmin)
	last := map[string]*crashKey{}
	for d, key := range k.last {
		last[d] = key
	}
	k.mu.Unlock()

	// 1. nothing answered is lost: every certificate a device or an
	// approval was answered with is on record, for its device; every
	// request answered pending is on record, pending or decided
	st := k.state()
	answered := map[string]string{} // serial → device
	for _, key := range keys {
		if key.serial != "" {
			answered[key.serial] = key.dev.name
		}
	}
	for s, d := range byAdmin {
		answered[s] = d
	}
	for s, d := range answered {
		c, ok := st.certs[s]
		switch {
		case !ok:
			t.Errorf("certificate %s answered for %s is lost: the admin API has no record of it", s, d)
		case !strings.EqualFold(c.Device, d) && c.Device != "":
			t.Errorf("certificate %s answered for %s is recorded for %s", s, d, c.Device)
		case c.Revoked && c.Reason != ca.ReasonSuperseded:
			t.Errorf("certificate %s of %s is revoked for reason %d; only supersession revokes here", s, d, c.Reason)
		}
	}
	for _, key := range keys {
		r, ok := st.requests[strings.ToLower(key.dev.name)+"/"+key.spkiSum]
		switch {
		case (key.pending || key.der != nil) && !ok:
			t.Errorf("the request of %s key %d (answered %s) vanished", key.dev.name, key.seq, map[bool]string{true: "pending", false: "a certificate"}[key.der == nil])
		case key.der != nil && (r.State != "issued" || normSerial(r.Serial) != key.serial):
			t.Errorf("the request of %s key %d, answered certificate %s, is %s with serial %s", key.dev.name, key.seq, key.serial, r.State, r.Serial)
		}
	}
	for _, p := range st.pending {
		if p.State != "pending" {
			t.Errorf("the pending list has request %s of %s in state %s", p.ID, p.Device, p.State)
		}
	}

	unmarkedHolders := 0
	for device, serials := range st.byDevice {
		for _, s := range serials {
			if d, ok := st.file.Device(device); !st.certs[s].Revoked && (!ok || !d.Enrolled) {
				unmarkedHolders++
			}
		}
	}
	t.Logf("crash chaos: %d devices hold a current certificate but are not marked enrolled before one more request of each key", unmarkedHolders)

	// 2. one more request of each key (a device asking again after a
	// crash repairs what the crash cut short: resumeIssue), in the order
	// the device made them; then the records are consistent
	k.retrieveAll(keys, nil, "repairing retrieve")
	st = k.state()
	for device, serials := range st.byDevice {
		good := unrevoked(serials, func(s string) bool { return st.certs[s].Revoked })
		if len(good) > 1 {
			t.Errorf("%s holds %d unrevoked certificates after one more request of each key: %v", device, len(good), good)
		}
	}
	for device, key := range last {
		c := st.certs[key.serial]
		if !c.Revoked {
			continue
		}
		// superseded by a later certificate of the device, answered to it
		// or to an approval
		var later []string
		for _, s := range st.byDevice[strings.ToLower(device)] {
			if o := st.certs[s]; s != key.serial && !o.Revoked && !o.IssuedAt.Before(c.IssuedAt) && answeredNow(keys, byAdmin, s) {
				later = append(later, s)
			}
		}
		if len(later) == 0 {
			t.Errorf("%s: its latest certificate %s is revoked (reason %d) and no later answered certificate is current", device, key.serial, c.Reason)
		}
	}

	// 3. the file: it parses, and every device holding a current
	// certificate is in it, marked enrolled (deferred marks are applied
	// in the background: poll)
	unmarked := filepath.Join(k.s.Dir, "data", "clearinghouse", "enroll", "unmarked")
	waitFor(t, "the deferred enrolled marks to be written", func() bool {
		entries, _ := os.ReadDir(unmarked)
		return !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".json") })
	})
	st = k.state()
	for device, serials := range st.byDevice {
		for _, s := range serials {
			if st.certs[s].Revoked {
				continue
			}
			d, ok := st.file.Device(device)
			if !ok || !d.Enrolled {
				t.Errorf("%s holds the current certificate %s but is not marked enrolled in the file (in it: %v)", device, s, ok)
			}
		}
	}

	// 4. retrieves are idempotent: each key is answered what the records
	// say, the same certificate as before when it is current; and they
	// change nothing
	k.retrieveAll(keys, st, "final retrieve")
	after := k.state()
	for s, c := range after.certs {
		if b, ok := st.certs[s]; !ok || b.Revoked != c.Revoked || b.Reason != c.Reason {
			t.Errorf("the final retrieves changed certificate %s: %+v, was %+v (known %v)", s, c, b, ok)
		}
	}
	if !after.file.Equal(st.file) {
		t.Errorf("the final retrieves changed the file:\n%s", st.file.Diff(after.file))
	}

	// 5. the CRL is signed by the CA and lists exactly the revoked
	// certificates
	crl := k.s.fetchCRL(k.caCert)
	listed := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		listed[e.SerialNumber.Text(16)] = e.ReasonCode
	}
	for s, c := range after.certs {
		reason, ok := listed[s]
		switch {
		case c.Revoked && !ok:
			t.Errorf("certificate %s of %s is revoked but not in the CRL", s, c.Device)
		case !c.Revoked && ok:
			t.Errorf("certificate %s of %s is in the CRL (reason %d) but its record is not revoked", s, c.Device, reason)
		case ok && reason != c.Reason:
			t.Errorf("certificate %s: reason %d in the CRL, %d in its record", s, reason, c.Reason)
		}
	}

	// 6. the storage: every record parses, and no temporary file a kill
	// left is taken for one
	k.checkStorage(after)
	k.checkLogs()
}

func normSerial(s string) string {
	n, _ := ca.NormalizeSerial(s)
	return n
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for a, b := range m {
		out[a] = b
	}
	return out
}

// answeredNow reports whether serial was answered to a device (including
// the final checks' requests) or an approval.
func answeredNow(keys []*crashKey, byAdmin map[string]string, serial string) bool {
	if _, ok := byAdmin[serial]; ok {
		return true
	}
	for _, key := range keys {
		if key.serial == serial {
			return true
		}
	}
	return false
}

// retrieveAll retrieves every key, each device's in the order it made them
// (devices in parallel). With st, each answer must be what st's records
// say; without, it is recorded like a device's.
func (k *crash) retrieveAll(keys []*crashKey, st *crashState, what string) {
	t := k.t
	byDev := map[string][]*crashKey{}
	for _, key := range keys {
		byDev[key.dev.name] = append(byDev[key.dev.name], key)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	for _, ks := range byDev {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, key := range ks {
				var want int
				var wantSerial string
				if st != nil {
					want, wantSerial = crashExpected(st, key)
				}
				ans := k.enroll(key, wire.OpRetrieve, what, soakNonce(), false)
				if st == nil || ans == nil {
					continue
				}
				msg := ""
				k.mu.Lock()
				der := key.der
				k.mu.Unlock()
				switch {
				case ans.Status != want:
					msg = fmt.Sprintf("status %d %q, want %d", ans.Status, ans.Error, want)
				case want == wire.StatusOK && !bytes.Equal(ans.Certificate, der):
					msg = fmt.Sprintf("another certificate than %s, answered before", wantSerial)
				}
				if msg != "" {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s of %s key %d: %s", what, key.dev.name, key.seq, msg))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	sort.Strings(wrong)
	for _, w := range wrong {
		t.Error(w)
	}
}

// crashExpected is the status (and serial) a retrieve of key gets, from
// the records.
func crashExpected(st *crashState, key *crashKey) (int, string) {
	r, ok := st.requests[strings.ToLower(key.dev.name)+"/"+key.spkiSum]
	switch {
	case !ok:
		return wire.StatusNotFound, ""
	case r.State == "pending":
		return wire.StatusPending, ""
	case r.State == "rejected":
		return wire.StatusRejected, ""
	}
	serial, _ := ca.NormalizeSerial(r.Serial)
	if c := st.certs[serial]; c.Revoked {
		return wire.StatusRejected, "" // superseded (nothing else revokes here)
	}
	return wire.StatusOK, serial
}

// A temporary file of an atomic write that a kill cut short: certmagic's
// file storage names them with digits only (os.CreateTemp with no pattern),
// the CA's own file store ".NAME.tmp-*".
var crashTempName = regexp.MustCompile(`^([0-9]+|\..*\.tmp-[0-9]+)$`)

// checkStorage reads every file of the storage: JSON records parse, index
// markers name what they index, PEM files decode; temporary files a kill
// left are reported, and must not surface as records (the admin API lists
// no id or serial that is not one).
func (k *crash) checkStorage(st *crashState) {
	t := k.t
	root := filepath.Join(k.s.Dir, "data")
	var temps []string
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		name := d.Name()
		switch {
		case crashTempName.MatchString(name):
			temps = append(temps, rel)
		case strings.HasPrefix(rel, "locks"+string(filepath.Separator)):
			// certmagic's lock files; one a kill left may be empty
			if len(b) > 0 && !json.Valid(b) {
				t.Errorf("storage: lock file %s is not JSON: %.200q", rel, b)
			}
		case strings.HasSuffix(name, ".json"):
			if !json.Valid(b) {
				t.Errorf("storage: %s is not valid JSON: %.200q", rel, b)
			}
		case strings.HasSuffix(name, ".crt") || strings.HasSuffix(name, ".pem") || strings.HasSuffix(name, ".key"):
			if blk, _ := pem.Decode(b); blk == nil {
				t.Errorf("storage: %s is not PEM: %.200q", rel, b)
			}
		case len(b) == 0:
			t.Errorf("storage: %s is empty", rel)
		}
		// markers of an index hold the name they index, then when they
		// were written (markers of earlier versions: the name alone)
		dir := filepath.Base(filepath.Dir(p))
		parent := filepath.Base(filepath.Dir(filepath.Dir(p)))
		if !crashTempName.MatchString(name) && (dir == "pending" || parent == "pending-of" || parent == "pending-by") {
			id, at, timed := strings.Cut(string(b), " ")
			if _, err := time.Parse(time.RFC3339Nano, at); id != name || (timed && err != nil) {
				t.Errorf("storage: index marker %s holds %.100q", rel, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking the storage: %v", err)
	}
	k.checkIssuedRecords(root, st)
	// beside the configuration file: its backups, no temporary file
	entries, _ := os.ReadDir(k.s.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+filepath.Base(k.s.conf)+".tmp-") {
			temps = append(temps, e.Name())
		}
	}
	t.Logf("crash chaos: %d storage files, %d temporary files left by kills: %v", files, len(temps), temps)
	for _, p := range st.pending {
		if len(p.ID) != 32 {
			t.Errorf("the pending list has a request with id %q", p.ID)
		}
	}
	for _, r := range st.requests {
		if len(r.ID) != 32 {
			t.Errorf("the request list has a request with id %q", r.ID)
		}
	}
	for s, c := range st.certs {
		if c.Serial == "" || len(s) < 16 {
			t.Errorf("a certificate with serial %q (%+v) is listed", s, c)
		}
	}
}

// checkIssuedRecords reads the CA's records on disk (every certificate it
// issued, answered or not): a certificate in the list of revoked serials
// has its record marked revoked, and a device has at most one unrevoked
// certificate, one that was answered. One issued and never answered (a
// kill between the signing and the storing of its request) is superseded
// by the device's next enrollment; a device whose request was rejected
// after that keeps it, unused.
func (k *crash) checkIssuedRecords(root string, st *crashState) {
	t := k.t
	var revoked []string
	byDevice := map[string][]string{}
	dirs, _ := filepath.Glob(filepath.Join(root, "clearinghouse", "ca", "modern", "*", "issued"))
	if len(dirs) != 1 {
		t.Errorf("storage: %d CA issued folders: %v", len(dirs), dirs)
		return
	}
	var rf struct {
		Entries map[string]json.RawMessage `json:"entries"`
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(dirs[0]), "revoked.json")); err == nil {
		if err := json.Unmarshal(b, &rf); err != nil {
			t.Errorf("storage: revoked.json: %v", err)
		}
	}
	entries, _ := os.ReadDir(dirs[0])
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var rec struct {
			Serial  string `json:"serial"`
			Device  string `json:"device"`
			Revoked bool   `json:"revoked"`
		}
		b, err := os.ReadFile(filepath.Join(dirs[0], e.Name()))
		if err != nil || json.Unmarshal(b, &rec) != nil {
			continue // reported by the walk
		}
		_, listed := rf.Entries[rec.Serial]
		switch {
		case listed && !rec.Revoked:
			t.Errorf("storage: certificate %s of %s is in the list of revoked serials but its record is not marked revoked", rec.Serial, rec.Device)
		case rec.Revoked:
			revoked = append(revoked, rec.Serial)
		default:
			byDevice[strings.ToLower(rec.Device)] = append(byDevice[strings.ToLower(rec.Device)], rec.Serial)
		}
	}
	var unanswered []string
	for device, serials := range byDevice {
		if len(serials) > 1 {
			t.Errorf("storage: %s has %d unrevoked certificates: %v", device, len(serials), serials)
		}
		for _, s := range serials {
			if _, ok := st.certs[normSerial(s)]; !ok {
				unanswered = append(unanswered, device+"/"+s)
			}
		}
	}
	t.Logf("crash chaos: the CA's records: %d certificates revoked, %d devices hold one; unrevoked and never answered: %v",
		len(revoked), len(byDevice), unanswered)
}

// checkLogs looks for panics and data races in the logs of every Caddy
// the test started, and lists their warnings and errors.
func (k *crash) checkLogs() {
	t := k.t
	k.mu.Lock()
	logs := append(slices.Clone(k.logs), k.s.Logs())
	k.mu.Unlock()
	levels := map[string]int{}
	for _, l := range logs {
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(line, "panic") || strings.Contains(line, "DATA RACE") {
				t.Errorf("caddy log: %.2000s", line)
				continue
			}
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
				Error string `json:"error"`
			}
			if json.Unmarshal([]byte(line), &entry) != nil || entry.Level != "error" && entry.Level != "warn" {
				continue
			}
			levels[fmt.Sprintf("%s %q %.200s", entry.Level, entry.Msg, entry.Error)]++
			if strings.Contains(entry.Error, "corrupt") || strings.Contains(entry.Error, "unexpected end of JSON") {
				t.Errorf("caddy log: %.2000s", line)
			}
		}
	}
	for l, n := range levels {
		t.Logf("caddy log: %dx %s", n, l)
	}
}
