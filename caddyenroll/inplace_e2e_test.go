package caddyenroll_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// An operator's editor that writes the file in place (nano, `cat >`, cp),
// or deletes it and writes it anew, leaves it cut short while it writes.
// Here it is cut at the start of the last device's line and left so for a
// while, again and again, while the watcher polls and enrollments edit the
// file: the cut version parses (the last device gone). Written in place it
// is not taken until it has settled; written anew it may be taken, but the
// revocation of a removed device waits and finds it back in the file. The
// last device's certificate stays good, and the file whole.
func TestFileWrittenInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("through a real Caddy, for seconds")
	}
	var conf strings.Builder
	conf.WriteString("enroll enabled\nrouting enabled\ngroup \"\"\n")
	for i := range 8 {
		fmt.Fprintf(&conf, "device gw%d.inplace.test \"\" enabled\n", i)
	}
	const lastLine = "device last.inplace.test \"\" enabled"
	conf.WriteString(lastLine + "\nroute \"\" \"\" last.inplace.test 1\n")
	s := startServer(t, serverOpts{approval: "auto", conf: conf.String()})
	caCert := s.getCACert()

	key, csr := p256CSR(t, "last.inplace.test")
	a := s.do(enrollReq(wire.OpRequest, t, csr))
	if a.Status != wire.StatusOK {
		t.Fatalf("enrollment of the last device: status %d %s", a.Status, a.Error)
	}
	last := checkIssued(t, a.Certificate, caCert, "last.inplace.test", key)
	waitFor(t, "the last device marked enrolled", func() bool {
		d, ok := s.confFile().Device("last.inplace.test")
		return ok && d.Enrolled
	})
	whole, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.Index(whole, []byte(lastLine))
	if cut < 0 {
		t.Fatalf("no line %q in\n%s", lastLine, whole)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the editor
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			flags := os.O_WRONLY | os.O_TRUNC
			if i%2 == 1 { // an editor that deletes the file and writes it anew
				if err := os.Remove(s.conf); err != nil {
					t.Error(err)
					return
				}
				flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
			}
			f, err := os.OpenFile(s.conf, flags, 0o640)
			if err != nil {
				t.Error(err)
				return
			}
			f.Write(whole[:cut])
			time.Sleep(time.Duration(150+i%3*50) * time.Millisecond) // watch_interval is 100ms
			f.Write(whole[cut:])
			f.Close()
			time.Sleep(2 * time.Second) // an operator saves again: the file settles (a second) in between
		}
	}()
	// enrollments mark devices meanwhile: edits of the file
	for i := range 8 {
		_, csr := p256CSR(t, fmt.Sprintf("gw%d.inplace.test", i))
		if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusOK {
			t.Errorf("enrollment of gw%d: status %d %s", i, a.Status, a.Error)
		}
		time.Sleep(800 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := os.WriteFile(s.conf, whole, 0o640); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a few watch intervals

	if e := s.crlEntry(caCert, last); e != nil {
		t.Fatalf("the last device's certificate was revoked (reason %d): a cut version was taken", e.ReasonCode)
	}
	if d, ok := s.confFile().Device("last.inplace.test"); !ok || !d.Enabled {
		t.Fatalf("the last device in the file: %+v %v", d, ok)
	}
}
