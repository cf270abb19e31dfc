package caddyenroll

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
)

// tricklingBody sends its bytes one per read, waiting pause before each.
type tricklingBody struct {
	b     []byte
	pause time.Duration
}

func (t *tricklingBody) Read(p []byte) (int, error) {
	if len(t.b) == 0 {
		return 0, io.EOF
	}
	time.Sleep(t.pause)
	p[0] = t.b[0]
	t.b = t.b[1:]
	return 1, nil
}

func (t *tricklingBody) Close() error { return nil }

// A body that takes longer than maxBodyTime to arrive is refused with 408
// and the connection closed, by the enroll and the osp handler alike (a
// client sending its body a byte a second held a connection for hours
// where the operator set no read_body timeout); one that arrives in time
// is read.
func TestBodyTime(t *testing.T) {
	initMetrics()
	prev := maxBodyTime
	t.Cleanup(func() { maxBodyTime = prev })
	maxBodyTime = 200 * time.Millisecond
	keepPendingCount(t)
	enroll, _ := boundsApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	osp := &OSPHandler{}
	handlers := map[string]func(http.ResponseWriter, *http.Request) error{
		"enroll": func(w http.ResponseWriter, r *http.Request) error { return enroll.ServeHTTP(w, r, nil) },
		"osp":    func(w http.ResponseWriter, r *http.Request) error { return osp.ServeHTTP(w, r, nil) },
	}
	for name, serve := range handlers {
		for _, c := range []struct {
			what  string
			pause time.Duration
			slow  bool
		}{
			{"a byte every 50 ms", 50 * time.Millisecond, true},
			{"at once", 0, false},
		} {
			t.Run(name+" "+c.what, func(t *testing.T) {
				body := []byte("operation=unheard-of")
				r := httptest.NewRequest(http.MethodPost, "/", nil)
				r.Body, r.ContentLength = &tricklingBody{b: bytes.Clone(body), pause: c.pause}, int64(len(body))
				w := httptest.NewRecorder()
				err := serve(w, r)
				var he caddyhttp.HandlerError
				tooSlow := errors.As(err, &he) && he.StatusCode == http.StatusRequestTimeout
				if tooSlow != c.slow {
					t.Fatalf("refused as too slow: %v, want %v (%v)", tooSlow, c.slow, err)
				}
				if c.slow && !strings.EqualFold(w.Header().Get("Connection"), "close") {
					t.Error("the connection of a body too slow is not closed")
				}
				if !c.slow && name == "enroll" && (err != nil || !strings.HasPrefix(w.Body.String(), "status=")) {
					t.Errorf("a body in time was not answered: %v %q", err, w.Body.String())
				}
			})
		}
	}
}
