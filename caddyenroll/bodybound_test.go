package caddyenroll

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// An enrollment body over max_body (64 KiB) is refused with 413: one that
// says so in its Content-Length before a byte of it is read, one of unknown
// length once the bound is passed. A body at the bound is answered.
func TestEnrollBodyBound(t *testing.T) {
	keepPendingCount(t)
	h, _ := boundsApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	for _, c := range []struct {
		name     string
		size     int
		declared bool
		code     int // 0: answered
		maxRead  int
	}{
		{"declared over the bound", 64<<10 + 1, true, 413, 0},
		{"undeclared over the bound", 64<<10 + 1, false, 413, 64<<10 + 1},
		{"undeclared far over the bound", 1 << 20, false, 413, 64<<10 + 1},
		{"at the bound", 64 << 10, false, 0, 64 << 10},
	} {
		body := &countingReader{r: bytes.NewReader(append([]byte("operation=getcacert"), bytes.Repeat([]byte("&"), c.size-19)...))}
		r := httptest.NewRequest(http.MethodPost, "/", body)
		r.ContentLength = -1
		if c.declared {
			r.ContentLength = int64(c.size)
		}
		w := httptest.NewRecorder()
		err := h.ServeHTTP(w, r, nil)
		var he caddyhttp.HandlerError
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code == 0:
			if ans, derr := wire.DecodeResponse(w.Body.Bytes()); derr != nil || ans.Status != wire.StatusOK {
				t.Errorf("%s: answer %q (%v)", c.name, w.Body.String(), derr)
			}
		case !errors.As(err, &he) || he.StatusCode != c.code:
			t.Errorf("%s: %v, want HTTP %d", c.name, err, c.code)
		}
		if body.n > c.maxRead {
			t.Errorf("%s: %d bytes read, want at most %d", c.name, body.n, c.maxRead)
		}
	}
}
