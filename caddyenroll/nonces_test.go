package caddyenroll

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
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

// After nonce_retention changes (a reload, a restart, another instance),
// the nonces bound under the old retention stay refused until they are
// older than the new one, and the janitor keeps the old buckets that long
// and deletes them after.
func TestNonceRetentionChange(t *testing.T) {
	cases := []struct {
		name     string
		from, to time.Duration
		// when the new retention starts, after the nonce was bound
		after time.Duration
		// a time at which the nonce must still be refused, and one from
		// which the old buckets are gone
		stillRefused, forgotten time.Duration
	}{
		{"shrink 30d to 1h", 720 * time.Hour, time.Hour, 10 * time.Minute, 70 * time.Minute, 5 * time.Hour},
		{"grow 1h to 30d", time.Hour, 720 * time.Hour, 30 * time.Minute, 700 * time.Hour, 725 * time.Hour},
		{"1h to 2h", time.Hour, 2 * time.Hour, 50 * time.Minute, 110 * time.Minute, 6 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newNonceFixture(t, tc.from)
			ctx := nonceTestCtx(t)
			bound := nonceEpoch.Add(24*time.Hour + 35*time.Minute)
			f.clock = bound
			if ok, err := f.s.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("bind: %v %v", ok, err)
			}
			if _, _, err := f.s.pruneNonces(ctx); err != nil { // the old janitor's last run
				t.Fatal(err)
			}

			var clock time.Time
			next := newStateStore(localLocks{&certmagic.FileStorage{Path: f.fs.Path}}, tc.to)
			next.now = func() time.Time { return clock }
			clock = bound.Add(tc.after)
			if err := next.readBucketSizes(ctx); err != nil { // as Provision does
				t.Fatal(err)
			}
			if ok, err := next.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("right after the change: the nonce is bound to another request (%v, %v)", ok, err)
			}
			if _, _, err := next.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			clock = bound.Add(tc.stillRefused)
			if _, _, err := next.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := next.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("%v after the bind: the nonce is bound to another request (%v, %v)", tc.stillRefused, ok, err)
			}
			if ok, err := next.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("its own request is refused (%v, %v)", ok, err)
			}

			clock = bound.Add(tc.forgotten)
			if _, _, err := next.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			old := path.Join(noncesPrefix(), strconv.FormatInt(f.s.bucket(bound), 10))
			if f.s.bucket(bound) != next.bucket(clock) && next.bucket(clock)-1 != f.s.bucket(bound) && f.fs.Exists(ctx, old) {
				t.Errorf("%v after the bind the old bucket %s is still there", tc.forgotten, old)
			}
			raw, err := f.fs.Load(ctx, nonceSizesKey())
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`[{"seconds":%d,`, int64(tc.to/time.Second)); !strings.HasPrefix(string(raw), want) || strings.Count(string(raw), "seconds") != 1 {
				t.Errorf("record %s, want only the new size", raw)
			}
			if ok, err := next.bindNonce(ctx, []byte("n"), "B"); err != nil || !ok {
				t.Errorf("%v after the bind, beyond both retentions: refused (%v, %v)", tc.forgotten, ok, err)
			}
		})
	}
}

// The buckets of another size that lookups read: from the previous one at
// its last run to the last it may have written, not older than the
// retention, and none for a record that is not ours.
func TestNonceOtherSizeBuckets(t *testing.T) {
	h := int64(3600)
	base := nonceEpoch.Unix() / h // an hour bucket
	seen := nonceEpoch.Add(30 * time.Minute)
	cases := []struct {
		name      string
		size      nonceSize
		now       time.Time
		retention time.Duration
		want      []int64
	}{
		{"hours, right after", nonceSize{Seconds: h, Seen: seen}, seen.Add(10 * time.Minute), 720 * time.Hour, []int64{base - 1, base}},
		{"hours, later", nonceSize{Seconds: h, Seen: seen}, seen.Add(100 * time.Hour), 720 * time.Hour, []int64{base - 1, base, base + 1, base + 2}},
		{"hours, short retention", nonceSize{Seconds: h, Seen: seen}, seen.Add(2 * time.Hour), time.Hour, []int64{base + 1, base + 2}},
		{"hours, beyond the retention", nonceSize{Seconds: h, Seen: seen}, seen.Add(4 * time.Hour), time.Hour, nil},
		{"days", nonceSize{Seconds: 720 * h, Seen: seen}, seen.Add(time.Hour), time.Hour, []int64{nonceEpoch.Unix() / (720 * h)}},
		{"under an hour: not ours", nonceSize{Seconds: 60, Seen: seen}, seen, time.Hour, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.size.buckets(tc.now, tc.retention)
			if !slices.Equal(got, tc.want) {
				t.Errorf("buckets %v, want %v", got, tc.want)
			}
		})
	}
}

// A record of sizes that does not parse is rewritten by the janitor, and
// Provision's read of it reports it.
func TestNonceSizesRecordCorrupt(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	if err := f.fs.Store(ctx, nonceSizesKey(), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := f.s.readBucketSizes(ctx); err == nil || !strings.Contains(err.Error(), "nonce_sizes.json") {
		t.Errorf("reading a corrupt record: %v, want an error naming it", err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatalf("the janitor on a corrupt record: %v", err)
	}
	if err := f.s.readBucketSizes(ctx); err != nil {
		t.Errorf("after the janitor: %v", err)
	}
}

// A record whose entries do not decode (a time that does not parse, a
// number where a time is) is as corrupt as one that is not JSON: the
// janitor rewrites it rather than failing at every run and never pruning
// again.
func TestNonceSizesRecordBadEntries(t *testing.T) {
	for _, raw := range []string{
		`[{"seconds":3600,"seen":"yesterday"}]`,
		`[{"seconds":3600,"seen":12}]`,
		`[{"seconds":3600,"seen":"2025-13-40T00:00:00Z"}]`,
		`{"seconds":3600}`,
		``,
	} {
		t.Run(raw, func(t *testing.T) {
			f := newNonceFixture(t, time.Hour)
			ctx := nonceTestCtx(t)
			old := path.Join(noncesPrefix(), "7", "x")
			if err := f.fs.Store(ctx, old, []byte("A")); err != nil {
				t.Fatal(err)
			}
			if err := f.fs.Store(ctx, nonceSizesKey(), []byte(raw)); err != nil {
				t.Fatal(err)
			}
			if err := f.s.readBucketSizes(ctx); err == nil {
				t.Error("reading the record: no error")
			}
			if _, _, err := f.s.pruneNonces(ctx); err != nil {
				t.Fatalf("the janitor: %v", err)
			}
			if f.fs.Exists(ctx, old) {
				t.Error("the janitor pruned nothing")
			}
			if err := f.s.readBucketSizes(ctx); err != nil {
				t.Errorf("after the janitor: %v", err)
			}
		})
	}
}

// The entries of a partly corrupt record that decode are kept: lookups
// read their buckets, and the janitor rewrites the record with them.
func TestNonceSizesRecordKeepsGoodEntries(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(30 * time.Minute)
	seen := f.clock.Add(-10 * time.Minute).Format(time.RFC3339Nano)
	raw := `[{"seconds":7200,"seen":"` + seen + `"},{"seconds":86400,"seen":"soon"}]`
	if err := f.fs.Store(ctx, nonceSizesKey(), []byte(raw)); err != nil {
		t.Fatal(err)
	}
	other := f.clock.Unix() / 7200
	if err := f.fs.Store(ctx, nonceKey(other, []byte("n")), []byte("A")); err != nil {
		t.Fatal(err)
	}
	if err := f.s.readBucketSizes(ctx); err == nil {
		t.Error("reading the record: no error")
	}
	if ok, err := f.s.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
		t.Errorf("the nonce in the 2h bucket was not read (%v, %v)", ok, err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := f.fs.Load(ctx, nonceSizesKey())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"seconds":7200`) || strings.Contains(string(got), "86400") {
		t.Errorf("record after the janitor %s, want the 2h entry kept and the bad one gone", got)
	}
	if !f.fs.Exists(ctx, path.Join(noncesPrefix(), strconv.FormatInt(other, 10))) {
		t.Error("the janitor deleted the 2h bucket")
	}
}

// A record listing a great many sizes (hostile, or a bug) does not make
// every bind read thousands of buckets, nor keep them all: the sizes seen
// last are used, each once.
func TestNonceSizesRecordBounded(t *testing.T) {
	f := newNonceFixture(t, 720*time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(30 * time.Minute)
	var sizes []nonceSize
	for i := range 5000 {
		sizes = append(sizes, nonceSize{Seconds: 3600 + int64(i%2500), Seen: f.clock.Add(-time.Duration(i) * time.Second)})
	}
	raw, err := json.Marshal(sizes)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.fs.Store(ctx, nonceSizesKey(), raw); err != nil {
		t.Fatal(err)
	}
	if err := f.s.readBucketSizes(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.s.readBuckets(f.clock)); n > 3+maxOtherSizes*maxOtherBuckets {
		t.Errorf("a lookup reads %d buckets", n)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.loadBucketSizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 1+maxOtherSizes {
		t.Errorf("the record keeps %d sizes", len(got))
	}
	// the sizes seen last are those kept
	for _, o := range got[1:] {
		if o.Seconds >= 3600+maxOtherSizes {
			t.Errorf("kept %d s, seen at %v", o.Seconds, o.Seen)
		}
	}
}

// The janitor keeps the next bucket of another size in use, as it keeps
// its own next one: an instance whose clock runs a little ahead may have
// begun writing it.
func TestNonceJanitorKeepsNextBucketOfOtherSize(t *testing.T) {
	f := newNonceFixture(t, 720*time.Hour)
	ctx := nonceTestCtx(t)
	f.clock = nonceEpoch.Add(2*time.Hour - 30*time.Second) // just before an hour's end
	sizes, err := json.Marshal([]nonceSize{{Seconds: 3600, Seen: f.clock.Add(-10 * time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.fs.Store(ctx, nonceSizesKey(), sizes); err != nil {
		t.Fatal(err)
	}
	next := floorDiv(f.clock.Unix(), 3600) + 1
	if err := f.fs.Store(ctx, nonceKey(next, []byte("n")), []byte("A")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.fs.Exists(ctx, nonceKey(next, []byte("n"))) {
		t.Error("the janitor deleted the next hour's bucket of an instance still using 1h")
	}
}

// Instances sharing the storage with different nonce_retention at once (one
// started, or reloaded, before the other): a nonce bound at either is
// refused at the other with another request at once, not only after the
// first instance's next hourly janitor run has read the other's size.
func TestNonceRetentionsDifferAtOnce(t *testing.T) {
	for _, janitorFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("second janitor ran %v", janitorFirst), func(t *testing.T) {
			f := newNonceFixture(t, 720*time.Hour) // A, started first
			ctx := nonceTestCtx(t)
			f.clock = nonceEpoch.Add(24*time.Hour + 10*time.Minute)
			if err := f.s.readBucketSizes(ctx); err != nil { // as Provision does
				t.Fatal(err)
			}
			if _, _, err := f.s.pruneNonces(ctx); err != nil { // its janitor's first run
				t.Fatal(err)
			}
			// B, started a minute later with 2h
			b := newStateStore(localLocks{&certmagic.FileStorage{Path: f.fs.Path}}, 2*time.Hour)
			b.now = func() time.Time { return f.clock }
			f.clock = f.clock.Add(time.Minute)
			if err := b.readBucketSizes(ctx); err != nil {
				t.Fatal(err)
			}
			if janitorFirst {
				if _, _, err := b.pruneNonces(ctx); err != nil {
					t.Fatal(err)
				}
			}
			f.clock = f.clock.Add(time.Minute)
			if ok, err := b.bindNonce(ctx, []byte("at B"), "B"); err != nil || !ok {
				t.Fatalf("bind at B: %v %v", ok, err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("at B"), "other"); err != nil || ok {
				t.Errorf("a nonce bound at the 2h instance is reused at the 720h one: bound %v (%v)", ok, err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("at A"), "A"); err != nil || !ok {
				t.Fatalf("bind at A: %v %v", ok, err)
			}
			if ok, err := b.bindNonce(ctx, []byte("at A"), "other"); err != nil || ok {
				t.Errorf("a nonce bound at the 720h instance is reused at the 2h one: bound %v (%v)", ok, err)
			}
		})
	}
}

// The janitor of an instance with a short nonce_retention keeps the buckets
// another instance sharing the storage still uses with a longer one: a
// nonce that instance bound 10 days ago (in its previous bucket) stays
// refused there.
func TestNonceJanitorKeepsLongerRetentionInUse(t *testing.T) {
	f := newNonceFixture(t, time.Hour) // A, 1h
	ctx := nonceTestCtx(t)
	size := int64(720 * 3600)
	b := newStateStore(localLocks{&certmagic.FileStorage{Path: f.fs.Path}}, 720*time.Hour) // B, 30d
	b.now = func() time.Time { return f.clock }
	bound := time.Unix((floorDiv(nonceEpoch.Unix(), size)+1)*size+20*24*3600, 0)
	f.clock = bound
	if _, _, err := b.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.bindNonce(ctx, []byte("n"), "B"); err != nil || !ok {
		t.Fatalf("bind at B: %v %v", ok, err)
	}
	// 10 days and 2 hours later, both janitors running hourly
	f.clock = time.Unix((floorDiv(bound.Unix(), size)+1)*size+2*3600, 0)
	if _, _, err := b.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.bindNonce(ctx, []byte("n"), "other"); err != nil || ok {
		t.Errorf("%v after it was bound at the 720h instance, the nonce is reused there: bound %v (%v)", f.clock.Sub(bound), ok, err)
	}
}

// bindNonce binds a nonce to a request id alone, as the first versions
// did (bindNonceTo).
func (s *stateStore) bindNonce(ctx context.Context, nonce []byte, reqID string) (bool, error) {
	return s.bindNonceTo(ctx, nonce, reqID, reqID)
}

// A nonce bound by a clock ahead of this one (another instance's, within
// the skew allowed between instances, or this one's before an NTP step
// back) may sit in the next bucket: it is refused to another binding all
// the same, and still found for its own.
func TestNonceBoundByClockAhead(t *testing.T) {
	cases := []struct {
		name          string
		boundAt, then time.Duration // since nonceEpoch
		retention     time.Duration
	}{
		{"another instance 5 minutes ahead, across a boundary", 60*time.Minute + time.Minute, 58 * time.Minute, time.Hour},
		{"clock stepped back 2 seconds across a boundary", 60 * time.Minute, 59*time.Minute + 58*time.Second, time.Hour},
		{"clock stepped back 50 minutes", 61 * time.Minute, 11 * time.Minute, time.Hour},
		{"clock stepped back 3 hours, 30-day retention", 11*24*time.Hour + time.Hour, 11*24*time.Hour - 2*time.Hour, 720 * time.Hour}, // a 30-day bucket begins 11 days after nonceEpoch
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newNonceFixture(t, c.retention)
			ctx := nonceTestCtx(t)
			f.clock = nonceEpoch.Add(c.boundAt)
			if ok, err := f.s.bindNonce(ctx, []byte("n1"), "A"); err != nil || !ok {
				t.Fatalf("first bind = %v, %v", ok, err)
			}
			f.clock = nonceEpoch.Add(c.then)
			if f.s.bucket(f.clock) == f.s.bucket(nonceEpoch.Add(c.boundAt)) {
				t.Fatal("the case does not cross a bucket boundary")
			}
			if ok, err := f.s.bindNonce(ctx, []byte("n1"), "B"); err != nil || ok {
				t.Errorf("reuse by a clock behind = %v, %v; want refused", ok, err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("n1"), "A"); err != nil || !ok {
				t.Errorf("same binding by a clock behind = %v, %v; want accepted", ok, err)
			}
			// The janitor of the clock behind keeps the bucket.
			if _, _, err := f.s.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("n1"), "B"); err != nil || ok {
				t.Errorf("reuse after the janitor ran = %v, %v; want refused", ok, err)
			}
		})
	}
}
