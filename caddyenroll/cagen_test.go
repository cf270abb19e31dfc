package caddyenroll

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// startCluster is instances sharing one storage and one configuration
// file, each with its own App as another process would have: load
// (Provision reads the file), open (Provision opens the CAs) and record
// (Start names them in the file) are the steps of a start.
type startCluster struct {
	t     *testing.T
	conf  string
	st    certmagic.Storage
	apps  []*App
	auths map[string]*Authority
}

func newStartCluster(t *testing.T, crypto string, n int, auths map[string]*Authority) *startCluster {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ch.conf")
	body := "enroll enabled\n" + crypto + "group \"\"\ndevice d1.example \"\" enabled enrolled\n"
	if err := os.WriteFile(conf, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	if auths == nil {
		auths = map[string]*Authority{profileModern: {}}
	}
	return &startCluster{t: t, conf: conf, st: localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}},
		apps: make([]*App, n), auths: auths}
}

func (c *startCluster) load(i int) error {
	cs, err := loadConfigState(c.conf, -1)
	if err != nil {
		return err
	}
	cs.edits = new(sync.Mutex) // another process
	cs.lockFile = configFileLock(c.st, c.conf)
	c.apps[i] = &App{ConfigFile: c.conf, cfg: cs, storage: c.st, cas: map[string]*ca.CA{}, crypto: new(cryptoRecords), log: zap.NewNop()}
	return nil
}

func (c *startCluster) open(i int) error {
	for _, profile := range []string{profileModern, profileLegacy} {
		if auth := c.auths[profile]; auth != nil {
			if err := c.apps[i].openCA(context.Background(), profile, auth); err != nil {
				return fmt.Errorf("instance %d, CA %q: %v", i, profile, err)
			}
		}
	}
	return nil
}

func (c *startCluster) record(i int) error {
	if err := c.apps[i].recordCrypto(context.Background()); err != nil {
		return fmt.Errorf("instance %d: %v", i, err)
	}
	return nil
}

var fingerprintDir = regexp.MustCompile(`^[0-9a-f]{64}$`)

// check: one CA of each profile in storage, `current` names it, the file
// names it and every instance uses it; the enrolled flag is cleared when
// the file had no crypto item, kept when it had a value not ours.
func (c *startCluster) check(enrolledKept bool) {
	t := c.t
	t.Helper()
	ctx := context.Background()
	f, err := configfile.ParseFile(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, profile := range []string{profileModern, profileLegacy} {
		if c.auths[profile] == nil {
			continue
		}
		keys, err := c.st.List(ctx, "clearinghouse/ca/"+profile, false)
		if err != nil {
			t.Fatal(err)
		}
		var cas []string
		for _, k := range keys {
			if fingerprintDir.MatchString(path.Base(k)) {
				cas = append(cas, path.Base(k))
			}
		}
		if len(cas) != 1 {
			t.Errorf("%d %s CAs in storage, want 1: %v", len(cas), profile, cas)
		}
		cur, err := c.st.Load(ctx, "clearinghouse/ca/"+profile+"/current")
		if err != nil {
			t.Fatal(err)
		}
		param := c.apps[0].cas[profile].CryptoParam()
		for i, a := range c.apps {
			if got := a.cas[profile].CryptoParam(); got != param {
				t.Errorf("instance %d uses the %s CA %s, instance 0 %s", i, profile, got, param)
			}
		}
		if fields := strings.Fields(string(cur)); len(fields) != 1 || fields[0] != param {
			t.Errorf("%s/current says %q, the instances use %s (named)", profile, cur, param)
		}
		want = append(want, param)
	}
	if f.Crypto != strings.Join(want, " ") {
		t.Errorf("the file names %q, the instances use %q", f.Crypto, strings.Join(want, " "))
	}
	if d, _ := f.Device("d1.example"); d == nil || d.Enrolled != enrolledKept {
		t.Errorf("d1.example enrolled: %v, want %v", d != nil && d.Enrolled, enrolledKept)
	}
}

var startFiles = []struct {
	name, crypto string
	enrolledKept bool
}{
	{"no crypto item", "", false},
	{"crypto keys", "crypto 'keys'\n", true},
}

// Instances that start together on a file whose crypto item names no CA
// of ours end with one CA, named by `current` and the file and used by
// all, whichever order their steps come in (each instance loads the file
// before either records a CA).
func TestStartTogetherAgreeOnOneCA(t *testing.T) {
	type step struct {
		instance int
		do       string
	}
	orders := map[string][]step{
		// the second opens after the first generated, before it recorded
		"open open record record":               {{0, "open"}, {1, "open"}, {0, "record"}, {1, "record"}},
		"open open record record, second first": {{0, "open"}, {1, "open"}, {1, "record"}, {0, "record"}},
		// the first stops before it records: its CA is the one
		"open open record, first stopped": {{0, "open"}, {1, "open"}, {1, "record"}},
		// the second opens once the first has recorded
		"open record open record": {{0, "open"}, {0, "record"}, {1, "open"}, {1, "record"}},
	}
	for _, file := range startFiles {
		for name, steps := range orders {
			t.Run(file.name+"/"+name, func(t *testing.T) {
				c := newStartCluster(t, file.crypto, 2, nil)
				for i := range c.apps {
					if err := c.load(i); err != nil {
						t.Fatal(err)
					}
				}
				for _, s := range steps {
					var err error
					if s.do == "open" {
						err = c.open(s.instance)
					} else {
						err = c.record(s.instance)
					}
					if err != nil {
						t.Fatalf("%s: %v", s.do, err)
					}
				}
				c.check(file.enrolledKept)
			})
		}
	}
}

// The same with instances that start at once, as processes do, each step
// a little early or late.
func TestStartTogetherConcurrent(t *testing.T) {
	both := map[string]*Authority{profileModern: {}, profileLegacy: {}}
	for _, file := range append(startFiles, struct {
		name, crypto string
		enrolledKept bool
	}{"no crypto item, legacy CA too", "", false}) {
		t.Run(file.name, func(t *testing.T) {
			var auths map[string]*Authority
			if strings.Contains(file.name, "legacy") {
				auths = both
			}
			c := newStartCluster(t, file.crypto, 5, auths)
			c.startAll()
			c.check(file.enrolledKept)
		})
	}
}

// The same with the storage's own locks only, as processes have (no lock
// of this process queues them first): certmagic's file storage polls a
// held lock once a second.
func TestStartTogetherStorageLocksOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("waits on storage locks")
	}
	c := newStartCluster(t, "", 3, nil)
	c.st = c.st.(localLocks).Storage
	c.startAll()
	c.check(false)
}

// startAll starts every instance at once, each step a little early or late.
func (c *startCluster) startAll() {
	t := c.t
	t.Helper()
	jitter := func() { time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) }
	var wg sync.WaitGroup
	for i := range c.apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jitter()
			if err := c.load(i); err != nil {
				t.Error(err)
				return
			}
			jitter()
			if err := c.open(i); err != nil {
				t.Error(err)
				return
			}
			jitter()
			if err := c.record(i); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
