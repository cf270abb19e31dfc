package caddyenroll

import (
	"context"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// A nonce store on a temporary file storage, with a clock the test moves.
type nonceFixture struct {
	s     *stateStore
	fs    *certmagic.FileStorage
	clock time.Time
}

// nonceEpoch is the beginning of an hour (and of a day) in Unix time, so bucket
// boundaries of 1h and 24h windows fall on whole hours after it.
var nonceEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newNonceFixture(t *testing.T, retention time.Duration) *nonceFixture {
	t.Helper()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	f := &nonceFixture{fs: fs, clock: nonceEpoch}
	f.s = newStateStore(localLocks{fs}, retention)
	f.s.now = func() time.Time { return f.clock }
	return f
}

func nonceTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNonceBind(t *testing.T) {
	type step struct {
		at    time.Duration // since nonceEpoch
		nonce string
		id    string
		want  bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"same id twice", []step{
			{30 * time.Minute, "n1", "A", true},
			{40 * time.Minute, "n1", "A", true},
		}},
		{"another id", []step{
			{30 * time.Minute, "n1", "A", true},
			{31 * time.Minute, "n1", "B", false},
			{32 * time.Minute, "n1", "A", true}, // the refusal did not rebind it
		}},
		{"other nonces are independent", []step{
			{30 * time.Minute, "n1", "A", true},
			{31 * time.Minute, "n2", "B", true},
			{32 * time.Minute, "n1\x00", "B", true},
			{33 * time.Minute, "n2", "A", false},
		}},
		{"reuse across a bucket boundary", []step{
			{59*time.Minute + 59*time.Second, "n1", "A", true},
			{60 * time.Minute, "n1", "B", false},
			{60 * time.Minute, "n1", "A", true},
		}},
		{"remembered at least the retention", []step{
			{59*time.Minute + 59*time.Second, "n1", "A", true},
			{119*time.Minute + 58*time.Second, "n1", "B", false},
		}},
		{"remembered at most twice the retention", []step{
			{0, "n1", "A", true},
			{119*time.Minute + 59*time.Second, "n1", "B", false},
			{120 * time.Minute, "n1", "B", true},
			{121 * time.Minute, "n1", "A", false}, // now bound to B
		}},
		{"same id from the previous bucket is not stored again", []step{
			{30 * time.Minute, "n1", "A", true},
			{90 * time.Minute, "n1", "A", true},
			{150 * time.Minute, "n1", "B", true}, // forgotten: it stayed in bucket 0
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newNonceFixture(t, time.Hour)
			ctx := nonceTestCtx(t)
			for i, st := range c.steps {
				f.clock = nonceEpoch.Add(st.at)
				got, err := f.s.bindNonce(ctx, []byte(st.nonce), st.id)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != st.want {
					t.Fatalf("step %d: bindNonce(%q, %s) at +%v = %v, want %v", i, st.nonce, st.id, st.at, got, st.want)
				}
			}
		})
	}
}

// Should the two buckets disagree (two devices racing with one nonce), the
// nonce is refused to both request ids.
func TestNonceBindBucketsDisagree(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(90 * time.Minute)
	cur := f.s.bucket(f.clock)
	for b, id := range map[int64]string{cur: "A", cur - 1: "B"} {
		if err := f.fs.Store(ctx, nonceKey(b, []byte("n1")), []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"A", "B", "C"} {
		if ok, err := f.s.bindNonce(ctx, []byte("n1"), id); err != nil || ok {
			t.Errorf("bindNonce(n1, %s) = %v, %v; want refused", id, ok, err)
		}
	}
}

// A bound nonce lives at nonces/<bucket>/<sha256 hex>, and the bucket is
// floor(unix seconds / retention seconds).
func TestNonceKeyLayout(t *testing.T) {
	f := newNonceFixture(t, 24*time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(36 * time.Hour)
	if ok, err := f.s.bindNonce(ctx, []byte("secret nonce"), "A"); err != nil || !ok {
		t.Fatalf("bindNonce: %v %v", ok, err)
	}
	keys, err := f.fs.List(ctx, "clearinghouse/enroll/nonces", true)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(f.clock.Unix()/86400, 10)
	re := regexp.MustCompile(`^clearinghouse/enroll/nonces/` + want + `/[0-9a-f]{64}$`)
	var files []string
	for _, k := range keys {
		if info, err := f.fs.Stat(ctx, k); err == nil && info.IsTerminal {
			files = append(files, k)
		}
	}
	if len(files) != 1 || !re.MatchString(files[0]) {
		t.Fatalf("nonce keys %q, want one matching %s", files, re)
	}
	if strings.Contains(files[0], "secret") {
		t.Fatalf("nonce stored in clear: %s", files[0])
	}
	b, err := f.fs.Load(ctx, files[0])
	if err != nil || string(b) != "A" {
		t.Fatalf("value %q %v, want the request id", b, err)
	}
}

// The janitor deletes the buckets lookups no longer read and keeps the
// previous, the current and the next one.
func TestNoncePruneBuckets(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(10*time.Hour + 15*time.Minute)
	cur := f.s.bucket(f.clock)
	if cur != nonceEpoch.Unix()/3600+10 {
		t.Fatalf("bucket %d, want %d", cur, nonceEpoch.Unix()/3600+10)
	}
	buckets := map[int64]bool{ // bucket → kept
		cur - 5:  false,
		cur - 2:  false,
		cur - 1:  true,
		cur:      true,
		cur + 1:  true,  // a clock of another instance slightly ahead
		cur * 24: false, // made with a shorter retention
		cur / 24: false, // made with a longer retention
	}
	for b := range buckets {
		for _, n := range []string{"x", "y"} {
			if err := f.fs.Store(ctx, nonceKey(b, []byte(n+strconv.FormatInt(b, 10))), []byte("A")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// not the janitor's: left alone
	other := path.Join(noncesPrefix(), "notes.txt")
	if err := f.fs.Store(ctx, other, []byte("keep")); err != nil {
		t.Fatal(err)
	}

	nb, nf, err := f.s.pruneNonces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nb != 4 || nf != 0 {
		t.Errorf("pruned %d buckets and %d files, want 4 and 0", nb, nf)
	}
	for b, kept := range buckets {
		dir := path.Join(noncesPrefix(), strconv.FormatInt(b, 10))
		if got := f.fs.Exists(ctx, dir); got != kept {
			t.Errorf("bucket %d (current %+d): exists %v, want %v", b, b-cur, got, kept)
		}
		if got := f.fs.Exists(ctx, nonceKey(b, []byte("x"+strconv.FormatInt(b, 10)))); got != kept {
			t.Errorf("nonce in bucket %d (current %+d): exists %v, want %v", b, b-cur, got, kept)
		}
	}
	if !f.fs.Exists(ctx, other) {
		t.Error("a key that is neither a bucket nor a nonce file was deleted")
	}
	// a nonce of the previous bucket is still refused with another id
	if ok, err := f.s.bindNonce(ctx, []byte("x"+strconv.FormatInt(cur-1, 10)), "B"); err != nil || ok {
		t.Errorf("nonce of the previous bucket after pruning: bound=%v err=%v, want refused", ok, err)
	}
	// the lock was released, and there is nothing left to do
	nb, nf, err = f.s.pruneNonces(ctx)
	if err != nil || nb != 0 || nf != 0 {
		t.Errorf("second prune: %d buckets, %d files, %v; want nothing", nb, nf, err)
	}
}

// Flat nonce files of earlier versions go once older than the retention.
func TestNoncePruneLegacyFiles(t *testing.T) {
	f := newNonceFixture(t, 24*time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(100 * 24 * time.Hour)
	files := []struct {
		age  time.Duration
		kept bool
	}{
		{90 * 24 * time.Hour, false},
		{25 * time.Hour, false},
		{24*time.Hour + time.Minute, false},
		{23 * time.Hour, true},
		{time.Minute, true},
		{-time.Hour, true}, // written by a clock ahead of ours
	}
	keys := make([]string, len(files))
	for i, fl := range files {
		keys[i] = path.Join(noncesPrefix(), hashKey("nonce", "legacy"+strconv.Itoa(i)))
		if err := f.fs.Store(ctx, keys[i], []byte("A")); err != nil {
			t.Fatal(err)
		}
		mtime := f.clock.Add(-fl.age)
		if err := os.Chtimes(f.fs.Filename(keys[i]), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// a current bucket beside them stays
	if ok, err := f.s.bindNonce(ctx, []byte("new"), "A"); err != nil || !ok {
		t.Fatalf("bindNonce: %v %v", ok, err)
	}

	nb, nf, err := f.s.pruneNonces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nb != 0 || nf != 3 {
		t.Errorf("pruned %d buckets and %d files, want 0 and 3", nb, nf)
	}
	for i, fl := range files {
		if got := f.fs.Exists(ctx, keys[i]); got != fl.kept {
			t.Errorf("legacy file aged %v: exists %v, want %v", fl.age, got, fl.kept)
		}
	}
	if !f.fs.Exists(ctx, nonceKey(f.s.bucket(f.clock), []byte("new"))) {
		t.Error("the current bucket was deleted")
	}
}

// An empty storage has nothing to prune.
func TestNoncePruneEmpty(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	nb, nf, err := f.s.pruneNonces(nonceTestCtx(t))
	if err != nil || nb != 0 || nf != 0 {
		t.Fatalf("pruneNonces on empty storage: %d, %d, %v", nb, nf, err)
	}
}

func TestNonceRetentionValidate(t *testing.T) {
	cases := []struct {
		retention time.Duration
		ok        bool
	}{
		{-time.Hour, false},
		{0, false}, // Provision sets the default before validating
		{30 * time.Minute, false},
		{time.Hour - time.Second, false},
		{time.Hour, true},
		{720 * time.Hour, true},
	}
	for _, c := range cases {
		a := &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
			LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(time.Hour),
			NonceRetention: caddy.Duration(c.retention)}
		err := a.Validate()
		if c.ok && err != nil {
			t.Errorf("%v: %v", c.retention, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "nonce_retention must be at least 1h")) {
			t.Errorf("%v: error %v, want one about nonce_retention", c.retention, err)
		}
	}
}

// One nonce bound at the same moment to different requests: exactly one
// bind succeeds.
func TestNonceBindConcurrent(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	const n = 16
	results := make(chan bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := f.s.bindNonce(ctx, []byte("shared nonce"), "request-"+strconv.Itoa(i))
			if err != nil {
				t.Error(err)
			}
			results <- ok
		}()
	}
	wg.Wait()
	close(results)
	bound := 0
	for ok := range results {
		if ok {
			bound++
		}
	}
	if bound != 1 {
		t.Fatalf("%d of %d concurrent binds of one nonce succeeded, want 1", bound, n)
	}
}

// Nonces live in the storage, not in the process (README, "Replay"): a
// nonce bound before a restart, or by another instance sharing the
// storage, is refused with another request, and still accepted with its
// own.
func TestNonceReplayAcrossRestartAndInstances(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(30 * time.Minute)
	if ok, err := f.s.bindNonce(ctx, []byte("captured"), "A"); err != nil || !ok {
		t.Fatalf("first bind: %v %v", ok, err)
	}
	// a new process (or another instance) on the same storage directory
	other := newStateStore(localLocks{&certmagic.FileStorage{Path: f.fs.Path}}, time.Hour)
	other.now = func() time.Time { return nonceEpoch.Add(40 * time.Minute) }
	if ok, err := other.bindNonce(ctx, []byte("captured"), "B"); err != nil || ok {
		t.Fatalf("the nonce replayed with another request after a restart: bound %v (%v)", ok, err)
	}
	if ok, err := other.bindNonce(ctx, []byte("captured"), "A"); err != nil || !ok {
		t.Fatalf("the nonce repeated with its own request after a restart: bound %v (%v)", ok, err)
	}
	// and the reverse: what the other instance binds, the first refuses
	if ok, err := other.bindNonce(ctx, []byte("fresh"), "C"); err != nil || !ok {
		t.Fatalf("bind at the other instance: %v %v", ok, err)
	}
	if ok, err := f.s.bindNonce(ctx, []byte("fresh"), "D"); err != nil || ok {
		t.Fatalf("a nonce the other instance bound is reused here: bound %v (%v)", ok, err)
	}
}

// A nonce binds the request (device and key) and the `device` and
// `customer` ids it came with (README, "Replay"): the same request id with
// another device id or another customer id is refused. (TestStatusTable
// sees the device id only through the server, where a device's recorded
// ids refuse another customer anyway once it has enrolled.)
func TestNonceBindsDeviceAndCustomerIDs(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(30 * time.Minute)
	bind := func(device, customer string) bool {
		t.Helper()
		ok, err := f.s.bindNonceTo(ctx, []byte("n"), nonceBinding("req", device, customer), "req")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !bind("1000", "42") {
		t.Fatal("first bind refused")
	}
	if bind("1000", "43") {
		t.Error("the nonce was taken with another customer id")
	}
	if bind("1001", "42") {
		t.Error("the nonce was taken with another device id")
	}
	if bind("10004", "2") {
		t.Error("the nonce was taken with the ids split elsewhere")
	}
	if !bind("1000", "42") {
		t.Error("the nonce repeated with its own request and ids was refused")
	}
}
