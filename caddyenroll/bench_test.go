package caddyenroll_test

// Load benchmarks through a real Caddy over TLS with keep-alive, each next
// to the limit it is judged against, measured in the same run:
//
//	go test -run x -bench . -benchtime 3s ./caddyenroll/
//
// BenchmarkEnrollThroughCaddy vs BenchmarkSignInProcess (auto-approved
// enrollments from 50 concurrent keep-alive clients, each of a device's first
// enrollment here, so no earlier certificate is superseded) and BenchmarkGetCACertThroughCaddy vs
// BenchmarkRespondThroughCaddy (the same bytes from Caddy's `respond`).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

const benchDevices = 50

// benchConf defines n devices, already enrolled (as after an import), so
// each auto-approved enrollment is one device's first one here and leaves
// the file alone.
func benchConf(n int) string { return benchConfMarked(n, " enrolled") }

// benchConfMarked is benchConf with the devices' enrolled flag given
// (" enrolled" or "").
func benchConfMarked(n int, enrolled string) string {
	var b strings.Builder
	// a crypto value from an "older clearinghouse" keeps the enrolled flags
	b.WriteString("crypto 'imported'\nenroll enabled\nssl enabled\ngroup \"\"\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "device gw%05d.bench.example \"\" enabled%s\n", i, enrolled)
	}
	return b.String()
}

type benchServer struct {
	c       *testutil.Caddy
	url     string
	tlsAddr string
	pool    *x509.CertPool
}

func startBenchServer(b *testing.B, dir, extraSite string, devices int) *benchServer {
	return startBenchServerProfile(b, dir, extraSite, devices, "modern")
}

func startBenchServerProfile(b *testing.B, dir, extraSite string, devices int, profile string) *benchServer {
	b.Helper()
	confPath := filepath.Join(dir, "bench.conf")
	if _, err := os.Stat(confPath); err != nil && devices > 0 {
		if err := os.WriteFile(confPath, []byte(benchConf(devices)), 0o640); err != nil {
			b.Fatal(err)
		}
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(b))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(b))
	cf := fmt.Sprintf(`{
	admin %s
	local_certs
	skip_install_trust
	auto_https disable_redirects
	servers {
		protocols h1 h2
	}
	log {
		level {{LEVEL}}
	}
	storage file_system %s
	enroll {
		config_file %s
		approval auto
		account demo %s
		ca %s
	}
}
https://%s {
	bind 127.0.0.1
	tls internal
	%s
	enroll %s
}
`, admin, filepath.Join(dir, "data"), confPath, h, profile, tlsAddr, extraSite, profile)
	// BENCH_LOG_LEVEL=INFO: with the per-request logs of production's default level
	level := os.Getenv("BENCH_LOG_LEVEL")
	if level == "" {
		level = "ERROR"
	}
	cf = strings.Replace(cf, "{{LEVEL}}", level, 1)
	c := testutil.StartCaddy(b, dir, cf, admin, tlsAddr)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(testutil.InternalRootPEM(b, filepath.Join(dir, "data")))
	s := &benchServer{c: c, url: "https://" + tlsAddr + "/", tlsAddr: tlsAddr, pool: pool}
	s.waitTLS(b)
	return s
}

// waitTLS waits until the site completes a TLS handshake: Caddy listens
// before its certificate is loaded (or issued, on a first start), and
// answers handshakes meanwhile with an internal_error alert.
func (s *benchServer) waitTLS(b *testing.B) {
	b.Helper()
	for i := 0; ; i++ {
		conn, err := tls.Dial("tcp", s.tlsAddr, &tls.Config{RootCAs: s.pool})
		if err == nil {
			conn.Close()
			return
		}
		if i > 300 {
			b.Fatalf("TLS not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profileServer captures a 5 s CPU profile of the server process into
// $BENCH_SERVER_PROFILE (and its memory statistics and heap profile into
// .vars and .heap beside it), for finding its bottleneck.
func profileServer(s *benchServer) {
	out := os.Getenv("BENCH_SERVER_PROFILE")
	if out == "" {
		return
	}
	go func() {
		resp, err := http.Get("http://" + s.c.AdminAddr + "/debug/pprof/profile?seconds=5")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(out)
		if err != nil {
			return
		}
		defer f.Close()
		io.Copy(f, resp.Body)
		// and the memory statistics and live heap at the end of it
		for suffix, uri := range map[string]string{".vars": "/debug/vars", ".heap": "/debug/pprof/heap"} {
			if r, err := http.Get("http://" + s.c.AdminAddr + uri); err == nil {
				if g, err := os.Create(out + suffix); err == nil {
					io.Copy(g, r.Body)
					g.Close()
				}
				r.Body.Close()
			}
		}
	}()
}

// clients are one keep-alive HTTP/1.1 connection per simulated device.
func (s *benchServer) clients(n int) []*loadClient {
	host, _, _ := net.SplitHostPort(s.tlsAddr)
	out := make([]*loadClient, n)
	for i := range out {
		out[i] = newLoadClient(s.tlsAddr, &tls.Config{RootCAs: s.pool, ServerName: host})
	}
	return out
}

func benchCSR(b *testing.B, cn string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// postLoad POSTs n bodies to path from one goroutine per client, body(i)
// for the i-th, and checks every answer.
func postLoad(b *testing.B, clients []*loadClient, path, ctype string, n int, body func(i int) []byte, check func(status int, raw []byte) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for w := range clients {
		wg.Add(1)
		go func(cl *loadClient) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				status, raw, err := cl.post(path, ctype, body(i))
				if err != nil {
					errs <- err
					return
				}
				if err := check(status, raw); err != nil {
					errs <- fmt.Errorf("request %d: %v (%.300q)", i, err, raw)
					return
				}
			}
		}(clients[w])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// runLoad is postLoad for enrollment protocol answers.
func runLoad(b *testing.B, clients []*loadClient, path string, n int, body func(i int) []byte, check func(*wire.Response) error) {
	postLoad(b, clients, path, "text/html", n, body, func(_ int, raw []byte) error {
		ans, err := wire.DecodeResponse(raw)
		if err != nil {
			return err
		}
		return check(ans)
	})
}

func BenchmarkEnrollThroughCaddy(b *testing.B) { benchEnroll(b, "modern") }

// BenchmarkEnrollRolloutThroughCaddy is the same with devices that the
// file does not yet mark enrolled: every enrollment also marks its device
// in the configuration file (marks arriving together share one rewrite).
func BenchmarkEnrollRolloutThroughCaddy(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.conf"), []byte(benchConfMarked(b.N, "")), 0o640); err != nil {
		b.Fatal(err)
	}
	benchEnrollIn(b, dir, "modern")
	f, err := configfile.ParseFile(filepath.Join(dir, "bench.conf"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range f.Devices {
		if !f.Devices[i].Enrolled {
			b.Fatalf("%s not marked enrolled", f.Devices[i].Name)
		}
	}
}

// BenchmarkEnrollLegacyThroughCaddy is the same with the legacy profile
// (RSA-2048 CA signing with MD5-RSA); its limit is BenchmarkBareRSA2048Sign.
func BenchmarkEnrollLegacyThroughCaddy(b *testing.B) { benchEnroll(b, "legacy") }

func benchEnroll(b *testing.B, profile string) {
	dir := b.TempDir()
	if base := os.Getenv("BENCH_STORAGE_DIR"); base != "" {
		// e.g. /dev/shm: separates the server's own cost from the disk's fsyncs
		var err error
		if dir, err = os.MkdirTemp(base, "bench-enroll-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	benchEnrollIn(b, dir, profile)
}

func benchEnrollIn(b *testing.B, dir, profile string) {
	s := startBenchServerProfile(b, dir, "", b.N, profile)
	clients := s.clients(benchDevices)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		dev := fmt.Sprintf("gw%05d.bench.example", i)
		nonce := make([]byte, 16)
		rand.Read(nonce)
		bodies[i] = wire.EncodeRequest(wire.Request{Operation: wire.OpRequest, Nonce: nonce, Username: "demo",
			Password: "demo-password", Device: fmt.Sprint(1000 + i), Customer: "0", CSR: benchCSR(b, dev)})
	}
	// warm the credential cache and the connections
	runLoad(b, clients, "/", benchDevices, func(int) []byte { return []byte("operation=getcacert") }, func(*wire.Response) error { return nil })
	profileServer(s)
	b.ResetTimer()
	start := time.Now()
	runLoad(b, clients, "/", b.N, func(i int) []byte { return bodies[i] }, func(a *wire.Response) error {
		if a.Status != wire.StatusOK || len(a.Certificate) == 0 {
			return fmt.Errorf("status %d %s", a.Status, a.Error)
		}
		return nil
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enrollments/s")
}

// BenchmarkSignInProcess is the limit for BenchmarkEnrollThroughCaddy: the
// ca package signing P-256 CSRs with a P-256 CA on all cores.
func BenchmarkSignInProcess(b *testing.B) {
	c, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: "modern"}, "")
	if err != nil {
		b.Fatal(err)
	}
	csrs := make([][]byte, benchDevices)
	for i := range csrs {
		csrs[i] = benchCSR(b, fmt.Sprintf("gw%05d.bench.example", i))
	}
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1)) % benchDevices
			if _, err := c.Sign(csrs[i], fmt.Sprintf("gw%05d.bench.example", i), ca.Policy{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signatures/s")
}

// BenchmarkBareRSA2048Sign is the limit for the legacy profile: bare
// RSA-2048 PKCS#1 v1.5 signatures on all cores.
func BenchmarkBareRSA2048Sign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := md5.Sum([]byte("tbs"))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.MD5, digest[:]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signatures/s")
}

var getcacertAnswers = struct {
	sync.Mutex
	dir  map[string]string
	body map[string][]byte
}{dir: map[string]string{}, body: map[string][]byte{}}

// caAnswer starts a server once per profile to learn its getcacert answer;
// the getcacert and respond benchmarks then run on the same storage (same
// CA, same bytes).
func caAnswer(b *testing.B, profile string) (string, []byte) {
	getcacertAnswers.Lock()
	defer getcacertAnswers.Unlock()
	if dir, ok := getcacertAnswers.dir[profile]; ok {
		return dir, getcacertAnswers.body[profile]
	}
	dir, err := os.MkdirTemp("", "bench-getcacert-")
	if err != nil {
		b.Fatal(err)
	}
	testutil.RemoveAtExit(dir) // shared by the getcacert and respond benchmarks
	s := startBenchServerProfile(b, dir, "", benchDevices, profile)
	_, raw, err := s.clients(1)[0].post("/", "text/plain", []byte("operation=getcacert"))
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Clone(raw)
	s.c.Kill()
	getcacertAnswers.dir[profile], getcacertAnswers.body[profile] = dir, body
	return dir, body
}

func benchStatic(b *testing.B, profile, target string) {
	dir, body := caAnswer(b, profile)
	// `respond` of the same bytes at /respond on the same site
	site := "handle /respond {\n\t\theader Content-Type text/html\n\t\trespond `" + string(body) + "`\n\t}"
	s := startBenchServerProfile(b, dir, site, benchDevices, profile)
	clients := s.clients(benchDevices)
	check := func(a *wire.Response) error {
		if a.Status != 0 || len(a.Certificate) == 0 {
			return fmt.Errorf("status %d", a.Status)
		}
		return nil
	}
	runLoad(b, clients, target, benchDevices, func(int) []byte { return []byte("operation=getcacert") }, check)
	b.ResetTimer()
	start := time.Now()
	runLoad(b, clients, target, b.N, func(int) []byte { return []byte("operation=getcacert") }, check)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}

func BenchmarkGetCACertThroughCaddy(b *testing.B) {
	benchStatic(b, "modern", "/")
}

func BenchmarkRespondThroughCaddy(b *testing.B) {
	benchStatic(b, "modern", "/respond")
}

// The same pair for the legacy profile (the RSA CA's larger certificate).
func BenchmarkGetCACertLegacyThroughCaddy(b *testing.B) {
	benchStatic(b, "legacy", "/")
}

func BenchmarkRespondLegacyThroughCaddy(b *testing.B) {
	benchStatic(b, "legacy", "/respond")
}

const ospBenchConf = `crypto 'imported'
routing enabled
cdrs enabled
group ""
device src.bench.example "" enabled enrolled
device d1.bench.example "" enabled enrolled
device d2.bench.example "" enabled enrolled
device d3.bench.example "" enabled enrolled
route "" "" d1.bench.example 50 d2.bench.example 30 d3.bench.example 20
`

// ospBench is a running Caddy answering AuthorizationRequests for 3
// destinations with 3 signed tokens, and its load.
type ospBench struct {
	s       *benchServer
	clients []*loadClient
	req     []byte
	answer  []byte // an answer, served by `respond` after addRespond
}

func startOSPBench(b *testing.B) *ospBench {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.conf"), []byte(ospBenchConf), 0o640); err != nil {
		b.Fatal(err)
	}
	site := "handle /osp {\n\t\tosp {\n\t\t\tsource_address 127.0.0.1 src.bench.example\n" + os.Getenv("BENCH_OSP_EXTRA") + "\t\t}\n\t}"
	s := startBenchServer(b, dir, site, 0)
	req, err := (&osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs: [][]byte{[]byte("bench")}, SourceInfo: []osp.Info{{Type: "e164", Value: "14048724799"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "1678"}}, MaxDestinations: 3}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	o := &ospBench{s: s, clients: s.clients(benchDevices), req: req}
	// the first answers are parsed in full, the timed ones only checked
	o.run(b, benchDevices, func(_ int, raw []byte) error {
		rsp, err := osp.ParseAuthorisationResponse(raw)
		if err == nil && (len(rsp.Destinations) != 3 || len(rsp.Destinations[2].Token) == 0) {
			err = fmt.Errorf("%d destinations", len(rsp.Destinations))
		}
		return err
	})
	return o
}

// run sends n AuthorizationRequests. Answers are checked lightly (3 tokens,
// status 200) unless check is given: the load generator shares the cores.
func (o *ospBench) run(b *testing.B, n int, check func(int, []byte) error) {
	if check == nil {
		check = func(status int, raw []byte) error {
			if status != 200 || bytes.Count(raw, []byte("<Token encoding")) != 3 || !bytes.Contains(raw, []byte("<Code>200</Code>")) {
				return fmt.Errorf("HTTP %d, not 3 tokens with status 200", status)
			}
			return nil
		}
	}
	postLoad(b, o.clients, "/osp", "text/plain", n, func(int) []byte { return o.req }, check)
}

// addRespond restarts the server with Caddy's `respond` of a real answer
// (3 signed tokens) at /respond on the same site.
func (o *ospBench) addRespond(b *testing.B) {
	_, answer, err := o.clients[0].post("/osp", "text/plain", o.req)
	if err != nil {
		b.Fatal(err)
	}
	if bytes.ContainsAny(answer, "`{}") {
		b.Fatal("the answer cannot be quoted in a Caddyfile")
	}
	o.answer = bytes.Clone(answer)
	cf, err := os.ReadFile(o.s.c.Config)
	if err != nil {
		b.Fatal(err)
	}
	site := "handle /respond {\n\t\theader Content-Type text/xml\n\t\theader Content-Length " + strconv.Itoa(len(answer)) + "\n\t\trespond `" + string(answer) + "`\n\t}\n\thandle /osp {"
	cf = bytes.Replace(cf, []byte("handle /osp {"), []byte(site), 1)
	if err := os.WriteFile(o.s.c.Config, cf, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, cl := range o.clients {
		cl.close()
	}
	o.s.c.Restart(o.s.tlsAddr)
	o.s.waitTLS(b)
	o.runRespond(b, benchDevices)
}

// runRespond sends n AuthorizationRequests to /respond.
func (o *ospBench) runRespond(b *testing.B, n int) {
	postLoad(b, o.clients, "/respond", "text/plain", n, func(int) []byte { return o.req }, func(status int, raw []byte) error {
		if status != 200 || !bytes.Equal(raw, o.answer) {
			return fmt.Errorf("respond: HTTP %d, %d bytes", status, len(raw))
		}
		return nil
	})
}

// BenchmarkOSPAuthorizeThroughCaddy: AuthorizationRequests answered with 3
// destinations and 3 signed tokens, through a real Caddy over TLS with
// keep-alive, from 50 concurrent clients. Its limit is
// BenchmarkTokenSignInProcess / 3.
func BenchmarkOSPAuthorizeThroughCaddy(b *testing.B) {
	o := startOSPBench(b)
	profileServer(o.s)
	b.ResetTimer()
	start := time.Now()
	o.run(b, b.N, nil)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "authorizations/s")
}

// BenchmarkOSPRespondThroughCaddy is Caddy's `respond` of a real answer for
// the same requests and connections: the floor of the OSP benchmarks.
func BenchmarkOSPRespondThroughCaddy(b *testing.B) {
	o := startOSPBench(b)
	o.addRespond(b)
	profileServer(o.s)
	b.ResetTimer()
	start := time.Now()
	o.runRespond(b, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}

// BenchmarkOSPRatio alternates rounds of authorizations through Caddy with
// rounds of bare token signing on all cores (b.N operations each), so that
// both see the same machine, and reports the authorizations' rate as a
// percentage of the bare rate divided by 3.
//
// A third kind of round measures Caddy's floor: its `respond` handler
// sending the bytes of a real answer for the same request on the same site
// and connections. An authorization costs at least that plus three bare
// signatures, so "%-ceiling" = 100 / (1 + bare/(3·respond)) is the most any
// OSP handler inside this Caddy could reach on this machine.
func BenchmarkOSPRatio(b *testing.B) {
	o := startOSPBench(b)
	o.addRespond(b)
	signer, info := benchTokenSigner(b)
	var ospTime, signTime, oneCoreTime, respondTime time.Duration
	sign := func() {
		if _, err := signer.Sign(info); err != nil {
			b.Error(err)
		}
	}
	rounds := 6
	for range rounds {
		start := time.Now()
		o.run(b, b.N, nil)
		ospTime += time.Since(start)
		start = time.Now()
		parallelDo(runtime.GOMAXPROCS(0), 3*b.N, sign)
		signTime += time.Since(start)
		start = time.Now()
		parallelDo(1, b.N, sign)
		oneCoreTime += time.Since(start)
		start = time.Now()
		o.runRespond(b, b.N)
		respondTime += time.Since(start)
	}
	auths := float64(rounds*b.N) / ospTime.Seconds()
	bare := float64(3*rounds*b.N) / signTime.Seconds()
	oneCore := float64(rounds*b.N) / oneCoreTime.Seconds()
	respond := float64(rounds*b.N) / respondTime.Seconds()
	b.ReportMetric(auths, "authorizations/s")
	b.ReportMetric(bare, "bare-tokens/s")
	b.ReportMetric(100*auths/(bare/3), "%-of-bare/3")
	b.ReportMetric(respond, "respond/s")
	b.ReportMetric(100/(1+bare/(3*respond)), "%-ceiling")
	// for reference: against one core signing alone, the figure `go test
	// -bench` gives for BenchmarkSignToken
	b.ReportMetric(100*auths/(oneCore/3), "%-of-one-core-bare/3")
}

// parallelDo runs fn n times on `workers` goroutines.
func parallelDo(workers, n int, fn func()) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				fn()
			}
		}()
	}
	wg.Wait()
}

// benchTokenSigner is a P-256 token signer from a fresh CA and a TokenInfo
// like the server's. With `tokens ca_signed` in BENCH_OSP_EXTRA it is the
// CA itself, signing the form that site signs (no certificate, no signed
// attributes), so that the ratio compares like with like.
func benchTokenSigner(b *testing.B) (*osp.TokenSigner, []byte) {
	c, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: "modern"}, "")
	if err != nil {
		b.Fatal(err)
	}
	var signer *osp.TokenSigner
	if strings.Contains(os.Getenv("BENCH_OSP_EXTRA"), "ca_signed") {
		key, cert := c.TokenSigningKey()
		signer = &osp.TokenSigner{Cert: cert, Key: key, CASigned: true}
	} else {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := c.IssueTokenSigner(key.Public(), "bench token signer", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		signer = &osp.TokenSigner{Cert: is.Cert, Key: key}
	}
	now := time.Now().UTC()
	info, err := (&osp.TokenInfo{Random: "1", SourceInfo: osp.Info{Type: "e164", Value: "14048724799"},
		DestinationInfo: osp.Info{Type: "e164", Value: "1678"}, SignalAddress: "[127.0.0.1]:5060",
		CallID: []byte("bench"), ValidAfter: now, ValidUntil: now.Add(time.Minute), TransactionID: 1234567,
		MaxDuration: 4 * time.Hour}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	return signer, info
}

// BenchmarkTokenSignInProcess is bare token signing (CMS SignedData with a
// P-256 key) on all cores.
func BenchmarkTokenSignInProcess(b *testing.B) {
	signer, info := benchTokenSigner(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := signer.Sign(info); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}
