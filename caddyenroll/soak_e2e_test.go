package caddyenroll_test

// A randomized, concurrent soak through a real Caddy (the built binary, with
// the race detector when the tests run with it): simulated devices enroll
// and re-enroll on a modern and a legacy site, an administrator approves,
// rejects and revokes, an operator edits the configuration file by hand
// (atomically, by rename, sometimes with a typo fixed moments later) while
// the app watches it, and Caddy reloads its config twice. Afterwards, with
// everything quiet, the test checks what must hold whatever the
// interleaving (see check). Known devices get their certificates at once
// (approval auto); unknown ones wait for the administrator, whose approval
// adds them to the file. It runs SOAK_DURATION (default 12s); SOAK_SEED
// repeats a run's random choices (not its interleaving); SOAK_RACE_CADDY=0
// runs Caddy without the race detector. SOAK_INSTANCES runs that many
// Caddy processes on one storage and one file (TestSoak 1, TestSoakCluster
// 2), each request going to one of them at random.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

const soakDefaultDuration = 12 * time.Second

// The configuration file of the soak. The first line is the operator's
// edit marker (soakMarker): each of the operator's edits renumbers it, so
// an edit the server wrote over shows as a marker gone.
const soakConf = `# soak edit 0
enroll enabled
routing enabled
cdrs disabled
ssl enabled
group ""
group 'Soak'
device 'gw0.soak.test' 'Soak' enabled
device 'gw1.soak.test' 'Soak' enabled
device 'gw2.soak.test' 'Soak' enabled
device 'gw3.soak.test' 'Soak' enabled
device 'gw4.soak.test' 'Soak' enabled
device 'gw5.soak.test' "" enabled
route 'Soak' '+1...' 'gw0.soak.test' 50 'gw1.soak.test' 50 'gw3.soak.test' 0
route "" "" 'gw4.soak.test' 1
`

var soakMarker = regexp.MustCompile(`(?m)^# soak edit (\d+)$`)

// soakDevice is a simulated device: known ones are in the file from the
// start (auto approval), unknown ones wait for the administrator until one
// of their requests is approved, which adds them to the file.
type soakDevice struct {
	name, id, customer, user string
	known                    bool
}

var soakDevices = []soakDevice{
	{"gw0.soak.test", "1000", "0", "demo", true},
	{"gw1.soak.test", "1001", "0", "demo", true},
	{"gw2.soak.test", "1002", "1000", "cust", true},
	{"gw3.soak.test", "1003", "1000", "cust", true},
	{"gw4.soak.test", "1004", "0", "demo", true},
	{"gw5.soak.test", "1005", "1000", "cust", true},
	{"new0.soak.test", "2000", "0", "demo", false},
	{"new1.soak.test", "2001", "1000", "cust", false},
	{"new2.soak.test", "2002", "0", "demo", false},
	{"new3.soak.test", "2003", "0", "demo", false},
}

// The devices the operator enables and disables.
var soakToggled = []string{"gw3.soak.test", "gw4.soak.test", "gw5.soak.test", "new0.soak.test"}

// soakKey is a key a device enrolled with, on one profile's site.
type soakKey struct {
	dev     soakDevice
	profile string
	spki    []byte // DER SubjectPublicKeyInfo
	spkiSum string // its SHA-256, hex, as request records name it
	csr     []byte
	nonce   []byte // of its first request
	priv    crypto.Signer
}

// soakCert is a certificate a device received.
type soakCert struct {
	key  *soakKey
	der  []byte
	cert *x509.Certificate
}

type soak struct {
	t      *testing.T
	s      *server // the first instance: its storage and file are all's
	insts  []soakInstance
	client *http.Client
	admin  *http.Client
	cas    map[string]*x509.Certificate // profile → getcacert's CA certificate

	mu         sync.Mutex
	violations []string
	keys       []*soakKey
	certs      []soakCert
	serials    []string                // every serial the test saw issued (devices, approvals)
	decided    map[string]soakDecision // request id → what the administrator decided last
	devRevoked map[string]time.Time    // lower-case device → when its last revoke by name answered 200 was asked for
	counts     map[string]int          // "what status" → answers
	marker     int                     // the operator's last edit
	written    os.FileInfo             // … the file it wrote
	writtenAt  time.Time               // … when it renamed it into place

	notes []string // what the log reports

	retries atomic.Int64 // requests sent again after a transport error
	// the operator's and a server's write of the file crossed, one of them
	// lost (see edit)
	raced atomic.Bool
	// held by the operator while the file does not parse, and by reloads
	// (a config whose file does not parse does not load)
	fileMu sync.Mutex
}

// soakInstance is one Caddy of the soak.
type soakInstance struct {
	s     *server
	sites map[string]string // profile → URL of its HTTPS enrollment site
	osp   string            // URL of its OSP site (client certificates of the modern CA)
}

// randomRun reads the settings of a randomized run from the environment,
// NAME being SOAK or CRASH: how long it runs (NAME_DURATION, else def), the
// seed of its random choices (NAME_SEED, else the clock) and the Caddy
// binary (with the race detector when the tests have it, unless
// NAME_RACE_CADDY=0).
func randomRun(t *testing.T, name string, def time.Duration) (dur time.Duration, seed uint64, bin string) {
	t.Helper()
	dur = def
	if v := os.Getenv(name + "_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s_DURATION=%q: want a positive duration such as 60s or 2m", name, v)
		}
		dur = d
	}
	seed = uint64(time.Now().UnixNano())
	if v := os.Getenv(name + "_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s_SEED=%q: %v", name, v, err)
		}
		seed = n
	}
	bin = testutil.CaddyBinary(t)
	if raceEnabled && os.Getenv(name+"_RACE_CADDY") != "0" {
		bin = testutil.CaddyRaceBinary(t)
	}
	return dur, seed, bin
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak through a real Caddy")
	}
	runSoak(t, soakInstances(t, 1))
}

// soakInstances is SOAK_INSTANCES, else def.
func soakInstances(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv("SOAK_INSTANCES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SOAK_INSTANCES=%q: want a number of Caddy processes, 1 or more", v)
	}
	return n
}

// runSoak runs the soak through n Caddy processes sharing the storage and
// the configuration file, and checks it.
func runSoak(t *testing.T, n int) {
	dur, seed, bin := randomRun(t, "SOAK", soakDefaultDuration)
	t.Logf("soak: %v, %d instance(s), SOAK_SEED=%d, caddy with the race detector: %v", dur, n, seed, bin != testutil.CaddyBinary(t))

	legacyAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	ospAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	s := startServer(t, serverOpts{
		approval: "auto", unknown: "pending", conf: soakConf, bin: bin,
		// devices enroll again and again: no bound on their certificates
		extra: "max_issued_per_device 1000000\n\t\taccount probe " + passwordHash(t) + "\n\t\tca legacy {\n\t\t\talgorithm rsa2048\n\t\t}",
		sites: fmt.Sprintf("https://%s {\n\tbind 127.0.0.1\n\ttls internal\n\tenroll legacy\n}\n", legacyAddr) +
			mtlsOSPSite(ospAddr) + "\n",
		waitAddrs: []string{legacyAddr, ospAddr},
	})
	tlsConf := s.client.Transport.(*http.Transport).TLSClientConfig
	insts := []soakInstance{{s, map[string]string{"modern": s.https, "legacy": "https://" + legacyAddr + "/"}, "https://" + ospAddr + "/osp"}}
	for range n - 1 {
		b, remap := startSecond(t, s, []string{legacyAddr, ospAddr}, nil)
		insts = append(insts, soakInstance{b, map[string]string{"modern": b.https, "legacy": remap("https://" + legacyAddr + "/")},
			remap("https://" + ospAddr + "/osp")})
	}
	for _, in := range insts {
		addr := strings.TrimSuffix(strings.TrimPrefix(in.sites["legacy"], "https://"), "/")
		waitFor(t, "the legacy site's TLS certificate", func() bool {
			conn, err := tls.Dial("tcp", addr, tlsConf)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
	k := &soak{t: t, s: s, insts: insts,
		client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsConf.Clone(), MaxIdleConnsPerHost: 32}},
		admin:      &http.Client{Timeout: 60 * time.Second},
		cas:        map[string]*x509.Certificate{},
		decided:    map[string]soakDecision{},
		devRevoked: map[string]time.Time{},
		counts:     map[string]int{},
	}
	for i := range insts {
		for profile := range insts[i].sites {
			ans, err := k.post(i, profile, wire.Request{Operation: wire.OpGetCACert})
			if err != nil || ans.Status != wire.StatusOK {
				t.Fatalf("getcacert (%s, instance %d): %v %+v", profile, i, err, ans)
			}
			if i > 0 {
				if !bytes.Equal(ans.Certificate, k.cas[profile].Raw) {
					t.Fatalf("getcacert (%s): instance %d answers another CA certificate than instance 0", profile, i)
				}
				continue
			}
			if k.cas[profile], err = x509.ParseCertificate(ans.Certificate); err != nil {
				t.Fatal(err)
			}
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(i uint64, f func(rng *mrand.Rand, stop <-chan struct{})) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(mrand.New(mrand.NewPCG(seed, i)), stop)
		}()
	}
	for i, d := range soakDevices {
		run(uint64(i), func(rng *mrand.Rand, stop <-chan struct{}) { k.device(d, rng, stop) })
	}
	run(100, k.administrator)
	for j := 1; j < n; j++ {
		run(102+uint64(j), k.administrator) // an administrator per instance, deciding at once
	}
	run(101, k.operator)
	run(102, func(rng *mrand.Rand, stop <-chan struct{}) { k.reloads(dur, rng, stop) })
	time.Sleep(dur)
	close(stop)
	wg.Wait()

	k.mu.Lock()
	t.Logf("soak: %d keys, %d certificates received, %d serials seen, %d decisions, %d operator edits, %d retries after transport errors",
		len(k.keys), len(k.certs), len(k.serials), len(k.decided), k.marker, k.retries.Load())
	var counts []string
	for c, n := range k.counts {
		counts = append(counts, fmt.Sprintf("%s: %d", c, n))
	}
	sort.Strings(counts)
	t.Logf("soak: answers\n\t%s", strings.Join(counts, "\n\t"))
	k.mu.Unlock()

	k.check()
}

// violate records a broken invariant (goroutines must not call t.Fatal).
func (k *soak) violate(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.violations) < 100 {
		k.violations = append(k.violations, fmt.Sprintf(format, args...))
	}
}

func (k *soak) count(what string, status int) {
	k.mu.Lock()
	k.counts[fmt.Sprintf("%s %d", what, status)]++
	k.mu.Unlock()
}

func stopped(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return true
	case <-time.After(d):
		return false
	}
}

func soakNonce() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[5] = 0 // seed-era clients send NUL bytes in nonces
	return b
}

// on picks the instance a request goes to: one at random (none of rng's
// numbers drawn with one instance, so that a seed chooses as before).
func (k *soak) on(rng *mrand.Rand) int {
	if len(k.insts) == 1 {
		return 0
	}
	return rng.IntN(len(k.insts))
}

// post sends a protocol request to a profile's site on instance i. A transport error
// (a connection closed during a reload) is retried with the same body:
// the same nonce and CSR are answered the same.
func (k *soak) post(i int, profile string, r wire.Request) (*wire.Response, error) {
	body := wire.EncodeRequest(r)
	code, raw, err := withRetries(func() (*http.Response, error) {
		return k.client.Post(k.insts[i].sites[profile], wire.RequestContentType(r.Operation), bytes.NewReader(body))
	}, func() { k.retries.Add(1) })
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300q", code, raw)
	}
	ans, err := wire.DecodeResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("answer %.300q: %v", raw, err)
	}
	return ans, nil
}

// adminDo calls instance i's admin API, retrying transport errors.
func (k *soak) adminDo(i int, method, uri, body string) (int, string, error) {
	code, b, err := withRetries(func() (*http.Response, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, "http://"+k.insts[i].s.AdminAddr+uri, rd)
		if err != nil {
			return nil, err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return k.admin.Do(req)
	}, nil)
	return code, string(b), err
}

// withRetries makes a request with do and reads its answer whole, trying
// up to five times while the transport fails (a connection closed during
// a reload); retried, when set, is called before each new try.
func withRetries(do func() (*http.Response, error), retried func()) (int, []byte, error) {
	var last error
	for try := range 5 {
		if try > 0 {
			if retried != nil {
				retried()
			}
			time.Sleep(time.Duration(try) * 100 * time.Millisecond)
		}
		resp, err := do()
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		return resp.StatusCode, b, nil
	}
	return 0, nil, fmt.Errorf("no answer after 5 tries: %v", last)
}

func (k *soak) newKey(d soakDevice, rng *mrand.Rand) (*soakKey, error) {
	profile := "modern"
	if rng.IntN(100) < 30 {
		profile = "legacy"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.name}}, key)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki)
	sk := &soakKey{dev: d, profile: profile, spki: spki, spkiSum: hex.EncodeToString(sum[:]), csr: csr, nonce: soakNonce(), priv: key}
	k.mu.Lock()
	k.keys = append(k.keys, sk)
	k.mu.Unlock()
	return sk, nil
}

func (k *soak) request(key *soakKey, op string, nonce []byte) wire.Request {
	return wire.Request{Operation: op, Nonce: nonce, Username: key.dev.user, Password: "demo-password",
		Device: key.dev.id, Customer: key.dev.customer, CSR: key.csr}
}

// enroll sends a request or retrieve for key to instance i and checks its answer: a
// status the situation allows (what: "new" for a key never sent, "repeat"
// for a request of a key sent before, "retrieve"), and a certificate for
// that key and device. It returns the status (-1: no answer).
func (k *soak) enroll(i int, key *soakKey, op, what string, nonce []byte) int {
	ans, err := k.post(i, key.profile, k.request(key, op, nonce))
	if err != nil {
		k.violate("%s %s (%s, %s, instance %d): %v", op, key.dev.name, what, key.profile, i, err)
		return -1
	}
	k.count(fmt.Sprintf("%s %s", key.profile, what), ans.Status)
	// a device the file lists from the start never waits for approval
	// (auto); an unknown one waits until an approval adds it to the file
	allowed := map[string][]int{
		"new":      {wire.StatusOK, wire.StatusPending, wire.StatusDeviceDisabled},
		"repeat":   {wire.StatusOK, wire.StatusPending, wire.StatusDeviceDisabled, wire.StatusRejected},
		"retrieve": {wire.StatusOK, wire.StatusPending, wire.StatusDeviceDisabled, wire.StatusRejected, wire.StatusNotFound},
	}[what]
	allowed = slices.DeleteFunc(slices.Clone(allowed), func(s int) bool {
		return s == wire.StatusPending && key.dev.known ||
			s == wire.StatusDeviceDisabled && !slices.Contains(soakToggled, key.dev.name) // never disabled
	})
	if !slices.Contains(allowed, ans.Status) {
		k.violate("%s %s (%s, %s, instance %d): status %d %q, want one of %v", op, key.dev.name, what, key.profile, i, ans.Status, ans.Error, allowed)
		return ans.Status
	}
	if ans.Status == wire.StatusOK {
		k.received(key, ans.Certificate, op)
	}
	return ans.Status
}

func (k *soak) received(key *soakKey, der []byte, how string) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		k.violate("%s %s: certificate does not parse: %v", how, key.dev.name, err)
		return
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, key.spki) {
		k.violate("%s %s (%s): the certificate %x is for another key", how, key.dev.name, key.profile, cert.SerialNumber)
	}
	if !strings.EqualFold(cert.Subject.CommonName, key.dev.name) {
		k.violate("%s %s (%s): the certificate %x names %q", how, key.dev.name, key.profile, cert.SerialNumber, cert.Subject.CommonName)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.certs = append(k.certs, soakCert{key: key, der: der, cert: cert})
	k.serials = append(k.serials, cert.SerialNumber.Text(16))
}

// device plays one device: new keys (re-enrollment), the same key again,
// retrieves, old keys, a wrong password, getcacert, a CRL.
func (k *soak) device(d soakDevice, rng *mrand.Rand, stop <-chan struct{}) {
	var keys []*soakKey
	var cur *soakKey
	for !stopped(stop, time.Duration(rng.IntN(30))*time.Millisecond) {
		switch x := rng.IntN(100); {
		case x < 22 || cur == nil:
			key, err := k.newKey(d, rng)
			if err != nil {
				k.violate("key: %v", err)
				return
			}
			keys = append(keys, key)
			cur = key
			if k.enroll(k.on(rng), key, wire.OpRequest, "new", key.nonce) == wire.StatusRejected {
				cur = nil
			}
		case x < 42:
			if k.enroll(k.on(rng), cur, wire.OpRequest, "repeat", soakNonce()) == wire.StatusRejected {
				cur = nil
			}
		case x < 62:
			nonce := cur.nonce // a request and its retrieves carry one nonce, or a new one
			if rng.IntN(2) == 0 {
				nonce = soakNonce()
			}
			if k.enroll(k.on(rng), cur, wire.OpRetrieve, "retrieve", nonce) == wire.StatusRejected {
				cur = nil
			}
		case x < 72:
			old := keys[rng.IntN(len(keys))]
			if rng.IntN(2) == 0 {
				k.enroll(k.on(rng), old, wire.OpRequest, "repeat", soakNonce())
			} else {
				k.enroll(k.on(rng), old, wire.OpRetrieve, "retrieve", soakNonce())
			}
		case x < 80:
			// a wrong password, on an account of its own: the devices'
			// accounts must not be locked out
			r := k.request(cur, wire.OpRequest, soakNonce())
			r.Username, r.Password = "probe", "not-the-password"
			ans, err := k.post(k.on(rng), cur.profile, r)
			if err != nil {
				k.violate("wrong password %s: %v", d.name, err)
				continue
			}
			k.count("wrong password", ans.Status)
			if ans.Status != wire.StatusBadCredentials && ans.Status != wire.StatusRateLimited {
				k.violate("wrong password %s: status %d %q, want 3 or 10", d.name, ans.Status, ans.Error)
			}
		case x < 86:
			profile := []string{"modern", "legacy"}[rng.IntN(2)]
			ans, err := k.post(k.on(rng), profile, wire.Request{Operation: wire.OpGetCACert})
			switch {
			case err != nil:
				k.violate("getcacert (%s): %v", profile, err)
			case ans.Status != wire.StatusOK || !bytes.Equal(ans.Certificate, k.cas[profile].Raw):
				k.violate("getcacert (%s): status %d %q, or another CA certificate", profile, ans.Status, ans.Error)
			}
		case x < 90:
			// a relying party fetching a CRL: the instance serves it again
			// for a while, the lag checkCRLs allows a cluster
			k.fetchCRL(k.on(rng), []string{"modern", "legacy"}[rng.IntN(2)])
		}
	}
}

// fetchCRL fetches a profile's CRL from instance i, as a relying party
// would, and checks that it parses (and, modern, is the CA's).
func (k *soak) fetchCRL(i int, profile string) {
	code, der, err := withRetries(func() (*http.Response, error) {
		return k.client.Get(k.insts[i].sites[profile] + "ca.crl")
	}, func() { k.retries.Add(1) })
	k.count("crl "+profile, code)
	if err != nil || code != http.StatusOK {
		k.violate("GET %s CRL (instance %d): %d %v", profile, i, code, err)
		return
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		k.violate("%s CRL (instance %d): %v", profile, i, err)
		return
	}
	if profile == "modern" {
		if err := crl.CheckSignatureFrom(k.cas[profile]); err != nil {
			k.violate("modern CRL (instance %d): %v", i, err)
		}
	}
}

// soakRequest is a request as the admin API lists it.
type soakRequest struct {
	ID              string    `json:"id"`
	Profile         string    `json:"profile"`
	Device          string    `json:"device"`
	PublicKeySHA256 string    `json:"public_key_sha256"`
	State           string    `json:"state"`
	Serial          string    `json:"serial"`
	Created         time.Time `json:"created"`
}

// soakDecision is an administrator's decision on a request. A request
// created before it (not made again since: a key whose certificate was
// revoked enrolls afresh under the same id) is in the state decided.
type soakDecision struct {
	state string
	at    time.Time // when the decision was asked for
}

type soakCertInfo struct {
	Profile  string    `json:"profile"`
	Serial   string    `json:"serial"`
	Revoked  bool      `json:"revoked"`
	Reason   int       `json:"reason"`
	IssuedAt time.Time `json:"issued_at"`
	Device   string    `json:"device"` // GET /enroll/certificates only
}

type soakDeviceInfo struct {
	Name         string         `json:"name"`
	Group        string         `json:"group"`
	Enabled      bool           `json:"enabled"`
	Enrolled     bool           `json:"enrolled"`
	Certificates []soakCertInfo `json:"certificates"`
}

var soakReasons = []int{ca.ReasonUnspecified, ca.ReasonKeyCompromise, ca.ReasonAffiliationChanged,
	ca.ReasonSuperseded, ca.ReasonCessationOfOperation, ca.ReasonPrivilegeWithdrawn}

// administrator approves and rejects pending requests, revokes devices
// and certificates, and lists.
func (k *soak) administrator(rng *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop, time.Duration(20+rng.IntN(60))*time.Millisecond) {
		switch x := rng.IntN(100); {
		case x < 45:
			code, body, err := k.adminDo(k.on(rng), "GET", "/enroll/pending", "")
			var pending []soakRequest
			if err != nil || code != 200 || json.Unmarshal([]byte(body), &pending) != nil {
				k.violate("GET /enroll/pending: %d %v %.300s", code, err, body)
				continue
			}
			rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
			for _, p := range pending[:min(len(pending), 3)] {
				k.decide(p, rng)
			}
		case x < 70:
			d := soakDevices[rng.IntN(len(soakDevices))]
			reason := soakReasons[rng.IntN(len(soakReasons))]
			at := time.Now()
			code, body, err := k.adminDo(k.on(rng), "POST", "/enroll/revoke", fmt.Sprintf(`{"device":%q,"reason":%d}`, d.name, reason))
			k.count("admin revoke device", code)
			switch {
			case err != nil:
				k.violate("revoke %s: %v", d.name, err)
			case code == 200:
				k.mu.Lock()
				if at.After(k.devRevoked[d.name]) {
					k.devRevoked[d.name] = at
				}
				k.mu.Unlock()
			case code == 404 && !d.known && strings.Contains(body, "no device"):
				// neither in the file nor issued a certificate yet
			default:
				k.violate("revoke %s reason %d: %d %.300s", d.name, reason, code, body)
			}
		case x < 80:
			k.mu.Lock()
			serial := ""
			if len(k.serials) > 0 {
				serial = k.serials[rng.IntN(len(k.serials))]
			}
			k.mu.Unlock()
			if serial == "" {
				continue
			}
			reason := soakReasons[rng.IntN(len(soakReasons))]
			code, body, err := k.adminDo(k.on(rng), "POST", "/enroll/revoke", fmt.Sprintf(`{"serial":%q,"reason":%d}`, serial, reason))
			k.count("admin revoke serial", code)
			if err != nil || code != 200 {
				k.violate("revoke serial %s reason %d: %d %v %.300s", serial, reason, code, err, body)
			}
		case x < 90:
			code, body, err := k.adminDo(k.on(rng), "GET", "/enroll/devices", "")
			var devs []soakDeviceInfo
			if err != nil || code != 200 || json.Unmarshal([]byte(body), &devs) != nil {
				k.violate("GET /enroll/devices: %d %v %.300s", code, err, body)
			}
		default:
			code, body, err := k.adminDo(k.on(rng), "GET", "/enroll/requests?limit=10000", "")
			var reqs []soakRequest
			if err != nil || code != 200 || json.Unmarshal([]byte(body), &reqs) != nil {
				k.violate("GET /enroll/requests: %d %v %.300s", code, err, body)
			}
		}
	}
}

// decide approves or rejects a pending request.
func (k *soak) decide(p soakRequest, rng *mrand.Rand) {
	if p.State != "pending" {
		k.violate("the pending list has request %s of %s in state %q", p.ID, p.Device, p.State)
	}
	approve := rng.IntN(100) < 65
	uri, body := "/enroll/reject/"+p.ID, `{"reason":"soak"}`
	if approve {
		uri, body = "/enroll/approve/"+p.ID, ""
		if rng.IntN(2) == 0 {
			body = `{"group":"Soak"}`
		}
	}
	at := time.Now()
	code, out, err := k.adminDo(k.on(rng), "POST", uri, body)
	if err != nil {
		k.violate("POST %s: %v", uri, err)
		return
	}
	k.count("admin "+strings.Split(uri, "/")[2], code)
	switch {
	case code == 200:
		var r soakRequest
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			k.violate("POST %s: %v: %.300s", uri, err, out)
			return
		}
		want := map[bool]string{true: "issued", false: "rejected"}[approve]
		if r.State != want || approve != (r.Serial != "") {
			k.violate("POST %s: request now %q with serial %q, want %q", uri, r.State, r.Serial, want)
		}
		k.mu.Lock()
		k.decided[p.ID] = soakDecision{r.State, at}
		if r.Serial != "" {
			k.serials = append(k.serials, r.Serial)
		}
		k.mu.Unlock()
	case code == 409 && approve && strings.Contains(out, "is disabled in the configuration file"):
		// the operator disabled the device
	case code == 409 && strings.Contains(out, "request is rejected"):
		// superseded since it was listed: its device enrolled with a
		// newer request, or made more than four newer ones; or another
		// administrator rejected it
	case code == 409 && len(k.insts) > 1 && strings.Contains(out, "request is issued"):
		// another administrator approved it since it was listed
	default:
		k.violate("POST %s (%s): %d %.300s", uri, p.Device, code, out)
	}
}

// operator edits the configuration file as with an editor: read it, change
// it, write a new file and rename it into place. It enables and disables
// devices, and sometimes saves a typo that it fixes moments later.
func (k *soak) operator(rng *mrand.Rand, stop <-chan struct{}) {
	for !stopped(stop, time.Duration(100+rng.IntN(300))*time.Millisecond) {
		if rng.IntN(100) < 15 {
			k.fileMu.Lock()
			k.edit(func(b []byte) []byte {
				return append(b, "device 'typo.soak.test' 'No Such Group' enabled\n"...)
			})
			time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			k.edit(func(b []byte) []byte {
				return bytes.Replace(b, []byte("device 'typo.soak.test' 'No Such Group' enabled\n"), nil, 1)
			})
			k.fileMu.Unlock()
			continue
		}
		k.edit(func(b []byte) []byte {
			f, err := configfile.Parse("clearinghouse.conf", b)
			if err != nil {
				k.violate("the operator's file does not parse: %v", err)
				return nil
			}
			var names []string
			for _, n := range soakToggled {
				if _, ok := f.Device(n); ok {
					names = append(names, n)
				}
			}
			name := names[rng.IntN(len(names))]
			d, _ := f.Device(name)
			if err := f.SetEnabled(name, !d.Enabled); err != nil {
				k.violate("operator: %v", err)
				return nil
			}
			return f.Bytes()
		})
	}
}

// edit applies change to the file as an editor would, renumbering the
// marker. The file it read must still be there when it renames its own
// into place (else it reads it again): an operator saving over the
// server's fresh write would lose the server's marks, which is no
// server's fault. It checks first that the server kept its previous edit.
func (k *soak) edit(change func([]byte) []byte) {
	path := k.s.conf
	for range 50 {
		read, b, err := readWithInfo(path)
		if err != nil {
			k.violate("operator: %v", err)
			return
		}
		k.mu.Lock()
		n := k.marker
		k.mu.Unlock()
		if m := soakMarker.FindSubmatch(b); m == nil || string(m[1]) != strconv.Itoa(n) {
			k.lostEdit(n, m)
		}
		out := change(bytes.Clone(b))
		if out == nil {
			return
		}
		out = soakMarker.ReplaceAll(out, []byte("# soak edit "+strconv.Itoa(n+1)))
		tmp := path + ".soak-tmp"
		if err := os.WriteFile(tmp, out, 0o640); err != nil {
			k.violate("operator: %v", err)
			return
		}
		if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, b) {
			os.Remove(tmp)
			continue // the server wrote meanwhile: start over from its version
		}
		written, _ := os.Stat(tmp)
		if err := os.Rename(tmp, path); err != nil {
			k.violate("operator: %v", err)
			return
		}
		if b1, err := os.Stat(configfile.BackupName(path, 1)); err == nil && os.SameFile(b1, read) {
			// a server's write rotated the version read here into the
			// backups after the check above: its rename and this one may
			// have crossed, and one of them be lost
			k.raced.Store(true)
		}
		k.mu.Lock()
		k.marker = n + 1
		k.written = written
		k.writtenAt = time.Now()
		k.mu.Unlock()
		return
	}
	k.violate("operator: the file kept changing under 50 edits")
}

func readWithInfo(path string) (os.FileInfo, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(f)
	return fi, b, err
}

// lostEdit reports the operator's edit n gone from the file (m is the
// file's marker). Editors take no lock, so the server cannot exclude that
// an operator's save lands in the instant between its last check of the
// file and its rename (README, "Production"); it must not write over a save
// that was in place when it checked. The server rotates the backups (the
// current file hard-linked as FILE.~1~) before that check, and its writes
// run one at a time: a lost version among the backups was in place when a
// write of the server's rotated them, hence when that write checked, and
// every later write parsed it. Lost in the instant, it is in no backup.
func (k *soak) lostEdit(n int, m [][]byte) {
	k.mu.Lock()
	written := k.written
	k.mu.Unlock()
	k.raced.Store(true)
	for i := 1; i <= 5; i++ {
		fi, err := os.Stat(configfile.BackupName(k.s.conf, i))
		if err == nil && written != nil && os.SameFile(fi, written) {
			k.violate("the server wrote over the operator's edit %d (the file's marker is %q), which was in place when it checked the file%s", n, m, k.fileHistory())
			return
		}
	}
	if runtime.GOOS == "linux" {
		// the server swaps its version in and back out if it displaced
		// another (configfile.SaveOptions.Replaces): nothing is lost
		k.violate("the operator's edit %d (the file's marker is %q) was lost in the instant of a server's write, which swaps it back on Linux%s", n, m, k.fileHistory())
		return
	}
	k.note("the operator's edit %d was lost in the instant of a server's write (documented)%s", n, k.fileHistory())
}

func (k *soak) note(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.notes = append(k.notes, fmt.Sprintf(format, args...))
}

// fileHistory describes the file and its backups, for a lost edit.
func (k *soak) fileHistory() string {
	k.mu.Lock()
	written, at := k.written, k.writtenAt
	k.mu.Unlock()
	desc := func(fi os.FileInfo) string {
		if fi == nil {
			return "none"
		}
		ino := uint64(0)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		return fmt.Sprintf("inode %d, %d bytes, modified %s", ino, fi.Size(), fi.ModTime().Format("15:04:05.000000"))
	}
	out := fmt.Sprintf("\n\tthe operator's edit: %s, renamed at %s", desc(written), at.Format("15:04:05.000000"))
	for i := range 6 {
		p := k.s.conf
		if i > 0 {
			p = configfile.BackupName(p, i)
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(p)
		m := soakMarker.FindSubmatch(b)
		out += fmt.Sprintf("\n\t%s: %s, marker %q, the operator's edit: %v", filepath.Base(p), desc(fi), m, written != nil && os.SameFile(fi, written))
	}
	return out
}

// reloads reloads each Caddy's config (the same one) at a third and two
// thirds of the soak, one instance after the other (in the order rng
// draws, one the others' requests go on to meanwhile).
func (k *soak) reloads(dur time.Duration, rng *mrand.Rand, stop <-chan struct{}) {
	for range 2 {
		if stopped(stop, dur/3) {
			return
		}
		for _, i := range rng.Perm(len(k.insts)) {
			k.reload(i)
		}
	}
}

// reload reloads instance i's config (the same one).
func (k *soak) reload(i int) {
	caddyfile, err := os.ReadFile(k.insts[i].s.Config)
	if err != nil {
		k.violate("reload: %v", err)
		return
	}
	k.fileMu.Lock()
	defer k.fileMu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, "http://"+k.insts[i].s.AdminAddr+"/load", bytes.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // the same config: reload anyway
	resp, err := k.admin.Do(req)
	if err != nil {
		k.violate("reload of instance %d: %v", i, err)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		k.violate("reload of instance %d: HTTP %d: %.300s", i, resp.StatusCode, b)
	}
}

// soakState is what an instance's admin API and CRLs say once the soak is over.
type soakState struct {
	file     *configfile.File
	devices  map[string]soakDeviceInfo // by lower-case name
	certs    map[string]soakCertInfo   // by "profile/serial"
	byDevice map[string][]string       // lower-case device → "profile/serial"
	requests []soakRequest
	pending  []soakRequest
	crls     map[string]map[string]int // profile → serial → reason
}

func (k *soak) state(i int) *soakState {
	t := k.t
	t.Helper()
	st := &soakState{devices: map[string]soakDeviceInfo{}, certs: map[string]soakCertInfo{},
		byDevice: map[string][]string{}, crls: map[string]map[string]int{}}
	var err error
	if st.file, err = configfile.ParseFile(k.s.conf); err != nil {
		t.Fatalf("the configuration file does not parse after the soak: %v", err)
	}
	get := func(uri string, v any) {
		t.Helper()
		code, body, err := k.adminDo(i, "GET", uri, "")
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v %.300s", uri, code, err, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
	}
	var devs []soakDeviceInfo
	get("/enroll/devices", &devs)
	add := func(device string, c soakCertInfo) {
		key := c.Profile + "/" + c.Serial
		if _, ok := st.certs[key]; ok {
			return
		}
		st.certs[key] = c
		st.byDevice[strings.ToLower(device)] = append(st.byDevice[strings.ToLower(device)], key)
	}
	for _, d := range devs {
		st.devices[strings.ToLower(d.Name)] = d
		for _, c := range d.Certificates {
			add(d.Name, c)
		}
	}
	st.requests = k.requestList(t, i, "/enroll/requests")
	st.pending = k.requestList(t, i, "/enroll/pending")
	// the certificates of devices the file does not list: those the test
	// saw and those requests name
	k.mu.Lock()
	serials := slices.Clone(k.serials)
	k.mu.Unlock()
	for _, r := range st.requests {
		if r.Serial != "" {
			serials = append(serials, r.Serial)
		}
	}
	for _, s := range serials {
		n, err := ca.NormalizeSerial(s)
		if err != nil {
			t.Errorf("serial %q: %v", s, err)
			continue
		}
		if _, ok := st.certs["modern/"+n]; ok {
			continue
		}
		if _, ok := st.certs["legacy/"+n]; ok {
			continue
		}
		var c soakCertInfo
		get("/enroll/certificates/"+n, &c)
		add(c.Device, c)
	}
	st.crls = k.crls(i)
	return st
}

// crls reads instance i's CRLs: profile → serial → reason.
func (k *soak) crls(i int) map[string]map[string]int {
	t := k.t
	t.Helper()
	out := map[string]map[string]int{}
	for profile, site := range k.insts[i].sites {
		resp, err := k.client.Get(site + "ca.crl")
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("%s CRL of instance %d: %v", profile, i, err)
		}
		if profile == "modern" {
			if err := crl.CheckSignatureFrom(k.cas[profile]); err != nil {
				t.Errorf("modern CRL of instance %d: %v", i, err)
			}
		}
		out[profile] = map[string]int{}
		for _, e := range crl.RevokedCertificateEntries {
			out[profile][e.SerialNumber.Text(16)] = e.ReasonCode
		}
	}
	return out
}

// requestList reads every page of a request list of instance i.
func (k *soak) requestList(t *testing.T, i int, uri string) []soakRequest {
	t.Helper()
	var all []soakRequest
	next := uri + "?limit=1000"
	for next != "" {
		req, err := http.NewRequest("GET", "http://"+k.insts[i].s.AdminAddr+next, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := k.admin.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var page []soakRequest
		if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET %s: %d %.300s", next, resp.StatusCode, body)
		}
		all = append(all, page...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			next = strings.TrimPrefix(strings.SplitN(link, ">", 2)[0], "<")
		}
	}
	return all
}

// wait is waitFor that fails the test without stopping it.
func (k *soak) wait(what string, cond func() bool) {
	k.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			k.t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// check checks, with the soak over, what must hold whatever the
// interleaving was.
func (k *soak) check() {
	t := k.t
	if m := soakMarker.FindSubmatch(mustRead(t, k.s.conf)); m == nil || string(m[1]) != strconv.Itoa(k.marker) {
		k.lostEdit(k.marker, m)
	}
	for _, n := range k.notes {
		t.Log("soak: " + n)
	}
	for _, v := range k.violations {
		t.Error(v)
	}

	// the file is in force: the devices' enabled flags as it says, and the
	// certificates of disabled devices revoked
	f, err := configfile.ParseFile(k.s.conf)
	if err != nil {
		t.Fatalf("the configuration file does not parse after the soak: %v", err)
	}
	k.wait("the app to follow the file, and to revoke what disabled devices hold", func() bool {
		for i := range k.insts {
			st := k.state(i)
			for _, d := range f.Devices {
				info, ok := st.devices[strings.ToLower(d.Name)]
				if !ok || info.Enabled != d.Enabled {
					return false
				}
				for _, c := range info.Certificates {
					if !d.Enabled && !c.Revoked {
						return false
					}
				}
			}
		}
		return true
	})
	unmarked := filepath.Join(k.s.Dir, "data", "clearinghouse", "enroll", "unmarked")
	k.wait("the deferred enrolled marks to be written", func() bool {
		entries, err := os.ReadDir(unmarked)
		return err != nil || len(entries) == 0
	})

	if f, err = configfile.ParseFile(k.s.conf); err != nil {
		t.Fatal(err)
	}
	st := k.state(0)
	if !st.file.Equal(f) {
		t.Errorf("the server still changes the file once everything is quiet:\n%s", f.Diff(st.file))
	}
	k.checkAgree(st)

	// every certificate a device received chains to its site's CA, names
	// the device and is one the CA recorded for it
	for _, c := range k.certs {
		serial := c.key.profile + "/" + c.cert.SerialNumber.Text(16)
		rec, ok := st.certs[serial]
		if !ok {
			t.Errorf("%s received certificate %s, which the CA has no record of", c.key.dev.name, serial)
		} else if !strings.EqualFold(rec.Device, c.key.dev.name) && rec.Device != "" {
			t.Errorf("certificate %s of %s is recorded for %s", serial, c.key.dev.name, rec.Device)
		}
		if !slices.Contains(st.byDevice[c.key.dev.name], serial) {
			t.Errorf("certificate %s of %s is not among the device's certificates", serial, c.key.dev.name)
		}
		if c.key.profile == "modern" {
			checkSoakModern(t, c, k.cas["modern"])
		} else {
			checkSoakLegacy(t, c, k.cas["legacy"])
		}
	}

	// a save of the operator's that landed in the instant of a server's
	// write may have lost the server's marks (see edit): the final
	// retrieves below mark the devices holding a certificate again
	if !k.raced.Load() {
		k.checkHolders(st)
		k.checkUnmarked(st)
	}

	// the CRLs list exactly the revoked certificates, with their reasons
	k.checkCRLs(st)
	// … and the OSP sites take the certificates as their records say
	k.checkOSP(st)

	// the pending list holds pending requests only, none an administrator
	// decided (unless made again since), and decided requests stay so
	for _, p := range st.pending {
		if p.State != "pending" {
			t.Errorf("pending list: request %s of %s is %s", p.ID, p.Device, p.State)
		}
		if d, ok := k.decided[p.ID]; ok && p.Created.Before(d.at) {
			t.Errorf("pending list: request %s of %s (made %v) was %s at %v", p.ID, p.Device, p.Created, d.state, d.at)
		}
	}
	requests := map[string]soakRequest{}
	for _, r := range st.requests {
		requests[r.Profile+"/"+strings.ToLower(r.Device)+"/"+r.PublicKeySHA256] = r
		if d, ok := k.decided[r.ID]; ok && r.Created.Before(d.at) && r.State != d.state {
			t.Errorf("request %s of %s (made %v) was %s at %v, is %s", r.ID, r.Device, r.Created, d.state, d.at, r.State)
		}
		if r.State == "issued" {
			n, _ := ca.NormalizeSerial(r.Serial)
			if _, ok := st.certs[r.Profile+"/"+n]; !ok {
				t.Errorf("request %s of %s names certificate %s, which the %s CA has no record of", r.ID, r.Device, r.Serial, r.Profile)
			}
		}
	}

	// every key's retrieve is answered as the records say
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	final := map[int]int{}
	slots := make(chan struct{}, 8) // as many as the devices' accounts let in at once
	for j, key := range k.keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			want, wantSerial := soakExpected(st, requests, key)
			i := j % len(k.insts) // the instances in turn
			ans, err := k.post(i, key.profile, k.request(key, wire.OpRetrieve, soakNonce()))
			mu.Lock()
			final[want]++
			mu.Unlock()
			msg := ""
			switch {
			case err != nil:
				msg = err.Error()
			case ans.Status != want:
				msg = fmt.Sprintf("status %d %q, want %d", ans.Status, ans.Error, want)
			case want == wire.StatusOK:
				if c, err := x509.ParseCertificate(ans.Certificate); err != nil || c.SerialNumber.Text(16) != wantSerial {
					msg = fmt.Sprintf("another certificate than %s", wantSerial)
				}
			}
			if msg != "" {
				mu.Lock()
				wrong = append(wrong, fmt.Sprintf("final retrieve of %s (%s, key %.12s, instance %d): %s", key.dev.name, key.profile, key.spkiSum, i, msg))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("soak: final retrieves by expected status: %v", final)
	sort.Strings(wrong)
	for _, w := range wrong {
		t.Error(w)
	}
	// … and changes nothing
	after := k.state(0)
	for key, c := range after.certs {
		if b, ok := st.certs[key]; !ok || b.Revoked != c.Revoked || b.Reason != c.Reason {
			t.Errorf("the final retrieves changed certificate %s: %+v, was %+v (known %v)", key, c, b, ok)
		}
	}
	if k.raced.Load() {
		t.Log("soak: the operator's and the server's writes of the file crossed: the marks are checked after the final retrieves")
		k.checkHolders(after)
	}

	// no server errors counted, no undecodable requests
	for i, in := range k.insts {
		for labels, name := range map[string]map[string]string{
			"status 14": {"status": "14"}, "operation invalid": {"operation": "invalid"},
		} {
			if n := in.s.metric("caddy_clearinghouse_enroll_requests_total", name); n != 0 {
				t.Errorf("instance %d: %v enrollment answers with %s", i, n, labels)
			}
		}
		k.checkLogs(i)
	}
}

// checkCRLs checks that every instance's CRLs list exactly the revoked
// certificates of st, with their reasons. An instance serves the CRL it
// read moments ago again: a revocation made through another instance
// sharing the storage shows within 30 s (README, "The enrollment
// protocol"; ca.maxCRLCacheAge), so with more than one instance a CRL that
// lacks a revocation, or has the reason that keyCompromise replaced since
// (README: "keyCompromise (1) replaces another reason"), is read again
// until that window has passed. Nothing else is a CRL behind.
func (k *soak) checkCRLs(st *soakState) {
	deadline := time.Now()
	if len(k.insts) > 1 {
		deadline = deadline.Add(30*time.Second + 5*time.Second) // a little slack for the read itself
	}
	for i := range k.insts {
		crls := st.crls
		if i > 0 {
			crls = k.crls(i)
		}
		behind, wrong := crlMismatches(st.certs, crls)
		if len(behind) > 0 && len(wrong) == 0 && time.Now().Before(deadline) {
			start, was := time.Now(), len(behind)
			for len(behind) > 0 && len(wrong) == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Second)
				crls = k.crls(i)
				behind, wrong = crlMismatches(st.certs, crls)
			}
			k.t.Logf("soak: instance %d's CRLs lacked %d revocations, %d after %v", i, was, len(behind), time.Since(start).Round(time.Second))
		}
		for _, m := range append(wrong, behind...) {
			k.t.Errorf("instance %d: %s", i, m)
		}
	}
}

// checkOSP checks that each instance's OSP site takes a device's modern
// certificate (a capabilities indication, confirmed 200 to a device that
// may take part in calls, else 401) exactly when it is not revoked and the
// file has the device enabled and enrolled: per device, its last
// certificate received and up to three others. An instance sees a
// revocation made through it at once, one made through another within
// 30 s (README, "Administration": the instances re-read the CRLs and the
// device records that changed, revokedRefreshInterval), so with more than
// one instance a revoked certificate still taken is asked about again
// until that window has passed; a certificate that must be taken and is
// not is at once wrong (README: a device that enrolls again through
// another instance is taken with its new certificate by every instance at
// once).
func (k *soak) checkOSP(st *soakState) {
	t := k.t
	var picked []soakCert
	byDevice := map[string][]soakCert{}
	seen := map[string]bool{}
	for _, c := range k.certs {
		if serial := c.cert.SerialNumber.Text(16); c.key.profile == "modern" && !seen[serial] {
			seen[serial] = true
			byDevice[c.key.dev.name] = append(byDevice[c.key.dev.name], c)
		}
	}
	for _, cs := range byDevice {
		picked = append(picked, cs[len(cs)-1])
		for _, j := range mrand.Perm(len(cs) - 1)[:min(3, len(cs)-1)] {
			picked = append(picked, cs[j])
		}
	}
	capab, err := (&osp.CapabilitiesIndication{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now()
	if len(k.insts) > 1 {
		deadline = deadline.Add(30*time.Second + 5*time.Second) // a little slack for the refresh itself
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong, late []string
	taken := 0
	slots := make(chan struct{}, 4)
	for _, c := range picked {
		serial := "modern/" + c.cert.SerialNumber.Text(16)
		d, _ := st.file.Device(c.key.dev.name)
		want := 401
		if !st.certs[serial].Revoked && d.Enabled && d.Enrolled {
			want = 200
			taken++
		}
		for i, in := range k.insts {
			wg.Go(func() {
				slots <- struct{}{}
				defer func() { <-slots }()
				tr := k.client.Transport.(*http.Transport).Clone()
				tr.DisableKeepAlives = true
				tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key.priv, Leaf: c.cert}, nil
				}
				client := &http.Client{Timeout: 60 * time.Second, Transport: tr}
				start := time.Now()
				for {
					got, err := soakCapabilities(client, in.osp, capab)
					switch {
					case err != nil:
						mu.Lock()
						wrong = append(wrong, fmt.Sprintf("OSP capabilities of %s with certificate %s (instance %d): %v", c.key.dev.name, serial, i, err))
						mu.Unlock()
					case got == want:
						if time.Since(start) > time.Second {
							mu.Lock()
							late = append(late, fmt.Sprintf("%s on instance %d after %v", serial, i, time.Since(start).Round(time.Second)))
							mu.Unlock()
						}
					case want == 401 && time.Now().Before(deadline):
						time.Sleep(time.Second)
						continue
					default:
						mu.Lock()
						wrong = append(wrong, fmt.Sprintf("OSP capabilities of %s with certificate %s (instance %d): status %d, want %d (revoked %v, in the file %+v)",
							c.key.dev.name, serial, i, got, want, st.certs[serial].Revoked, d))
						mu.Unlock()
					}
					return
				}
			})
		}
	}
	wg.Wait()
	sort.Strings(wrong)
	for _, w := range wrong {
		t.Error(w)
	}
	t.Logf("soak: OSP asked with %d certificates on each instance (%d to be taken); revocations seen late: %v", len(picked), taken, late)
}

// soakCapabilities sends a capabilities indication and returns the status
// of its confirmation.
func soakCapabilities(client *http.Client, url string, body []byte) (int, error) {
	code, raw, err := withRetries(func() (*http.Response, error) {
		return client.Post(url, "text/plain", bytes.NewReader(body))
	}, nil)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %.300q", code, raw)
	}
	cnf, err := osp.ParseCapabilitiesConfirmation(raw)
	if err != nil {
		return 0, fmt.Errorf("%v: %.300q", err, raw)
	}
	return cnf.Status.Code, nil
}

// crlMismatches compares CRLs with the certificates' records: behind, what
// a CRL read before a revocation lacks; wrong, what no CRL may say.
func crlMismatches(certs map[string]soakCertInfo, crls map[string]map[string]int) (behind, wrong []string) {
	for key, c := range certs {
		profile, serial, _ := strings.Cut(key, "/")
		reason, listed := crls[profile][serial]
		switch {
		case c.Revoked && !listed:
			behind = append(behind, fmt.Sprintf("certificate %s is revoked but not in the %s CRL", key, profile))
		case !c.Revoked && listed:
			wrong = append(wrong, fmt.Sprintf("certificate %s is in the %s CRL but not revoked", key, profile))
		case listed && reason != c.Reason && c.Reason == ca.ReasonKeyCompromise:
			behind = append(behind, fmt.Sprintf("certificate %s: reason %d in the CRL, %d in its record", key, reason, c.Reason))
		case listed && reason != c.Reason:
			wrong = append(wrong, fmt.Sprintf("certificate %s: reason %d in the CRL, %d in its record", key, reason, c.Reason))
		}
	}
	sort.Strings(behind)
	sort.Strings(wrong)
	return behind, wrong
}

// unrevoked is the serials of which revoked says false.
func unrevoked(serials []string, revoked func(serial string) bool) []string {
	var good []string
	for _, s := range serials {
		if !revoked(s) {
			good = append(good, s)
		}
	}
	return good
}

// checkHolders checks that per device at most one certificate is
// unrevoked (re-enrollment supersedes the others), none for a device the
// file disables, that an enabled device holding one is marked enrolled, and
// that a device holding one is in the file (an approval adds it).
func (k *soak) checkHolders(st *soakState) {
	t := k.t
	for device, serials := range st.byDevice {
		good := unrevoked(serials, func(s string) bool { return st.certs[s].Revoked })
		if len(good) > 1 {
			t.Errorf("%s holds %d unrevoked certificates: %v", device, len(good), good)
		}
		d, inFile := st.file.Device(device)
		switch {
		case len(good) == 0:
		case !inFile:
			t.Errorf("%s holds the unrevoked certificate %v but is not in the file", device, good)
		case !d.Enabled:
			t.Errorf("%s is disabled in the file but holds the unrevoked certificate %v", device, good)
		case !d.Enrolled:
			t.Errorf("%s is enabled and holds the unrevoked certificate %v but is not marked enrolled", device, good)
		}
	}
}

// checkUnmarked checks that a device the administrator revoked by name is
// not marked enrolled, unless it received a certificate since (README,
// "Administration": revoking by device also unmarks it enrolled, also when
// the file could not be edited then, unless the device enrolled again
// meanwhile). A revoke by serial leaves the flag alone, but finds every
// certificate the device had when it was revoked by name revoked already.
// (Not when the operator's save crossed a server's write: the unmark may be
// the write lost.)
func (k *soak) checkUnmarked(st *soakState) {
	for name, at := range k.devRevoked {
		d, ok := st.file.Device(name)
		if !ok || !d.Enrolled {
			continue
		}
		since := false
		for _, key := range st.byDevice[name] {
			if c := st.certs[key]; !c.Revoked || c.IssuedAt.After(at) {
				since = true
			}
		}
		if !since {
			k.t.Errorf("%s is marked enrolled, but the administrator revoked it by name at %s and it has received no certificate since",
				name, at.Format("15:04:05.000"))
		}
	}
}

// soakExpected is the status (and serial) a retrieve of key gets once the
// soak is over, from the records.
func soakExpected(st *soakState, requests map[string]soakRequest, key *soakKey) (int, string) {
	if d, ok := st.file.Device(key.dev.name); ok && !d.Enabled {
		return wire.StatusDeviceDisabled, ""
	}
	r, ok := requests[key.profile+"/"+key.dev.name+"/"+key.spkiSum]
	switch {
	case !ok:
		return wire.StatusNotFound, ""
	case r.State == "pending":
		return wire.StatusPending, ""
	case r.State == "rejected":
		return wire.StatusRejected, ""
	}
	serial, _ := ca.NormalizeSerial(r.Serial)
	c := st.certs[key.profile+"/"+serial]
	switch {
	case !c.Revoked:
		return wire.StatusOK, serial
	case c.Reason == ca.ReasonKeyCompromise || c.Reason == ca.ReasonSuperseded:
		return wire.StatusRejected, ""
	}
	return wire.StatusNotFound, "" // revoked otherwise: the key enrolls afresh with a request
}

func checkSoakModern(t *testing.T, c soakCert, caCert *x509.Certificate) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := c.cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate %x of %s does not chain to the modern CA: %v", c.cert.SerialNumber, c.key.dev.name, err)
	}
	if len(c.cert.DNSNames) != 1 || c.cert.DNSNames[0] != c.key.dev.name {
		t.Errorf("certificate %x of %s names %v", c.cert.SerialNumber, c.key.dev.name, c.cert.DNSNames)
	}
}

func checkSoakLegacy(t *testing.T, c soakCert, caCert *x509.Certificate) {
	t.Helper()
	p := splitCert(t, c.der)
	pub, ok := caCert.PublicKey.(*rsa.PublicKey)
	sum := md5.Sum(p.tbs)
	if !bytes.Equal(c.cert.RawIssuer, caCert.RawSubject) || !p.alg.Equal(oidMD5WithRSA) || !ok ||
		rsa.VerifyPKCS1v15(pub, crypto.MD5, sum[:], p.sig) != nil {
		t.Errorf("certificate %x of %s is not an MD5-RSA certificate of the legacy CA", c.cert.SerialNumber, c.key.dev.name)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// soakLogErrors are the error lines the soak provokes on purpose.
var soakLogErrors = []string{
	"configuration file changed but is invalid; keeping the previous version",
}

// checkLogs looks for panics, data races and unexpected errors in
// instance n's log.
func (k *soak) checkLogs(n int) {
	t := k.t
	levels := map[string]map[string]int{}
	logs := k.insts[n].s.Logs()
	if i := strings.Index(logs, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("caddy log (instance %d): %.6000s", n, logs[i:]) // the race's stacks
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, "DATA RACE") {
			t.Errorf("caddy log (instance %d): %.2000s", n, line)
			continue
		}
		var entry struct {
			Level  string `json:"level"`
			Logger string `json:"logger"`
			Msg    string `json:"msg"`
			Error  string `json:"error"`
			Code   int    `json:"status_code"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if entry.Logger == "admin.api" && entry.Msg == "request error" &&
			(entry.Code >= 400 && entry.Code < 500 || entry.Code == 500 && strings.Contains(entry.Error, "configuration file unavailable")) {
			entry.Level = "admin API refusal" // answers the administrator got, checked there
		}
		if levels[entry.Level] == nil {
			levels[entry.Level] = map[string]int{}
		}
		levels[entry.Level][entry.Msg]++
		if entry.Level == "error" && !slices.Contains(soakLogErrors, entry.Msg) {
			t.Errorf("caddy log (instance %d): %.2000s", n, line)
		}
	}
	for _, level := range []string{"warn", "error", "admin API refusal"} {
		for msg, c := range levels[level] {
			t.Logf("caddy log (instance %d): %s %dx %q", n, level, c, msg)
		}
	}
}
