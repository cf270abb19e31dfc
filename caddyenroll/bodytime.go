package caddyenroll

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// maxBodyTime bounds how long the enroll and osp handlers wait for a
// request's body: a device's body (a form of 1–2 KB, an OSP message of a
// few KB) arrives in well under a second, while a client sending its
// announced body a byte a second would hold a connection, a goroutine
// and its buffers for hours where the operator set no `read_body`
// timeout (Caddy sets none by default, and its read_idle_timeout restarts
// at each byte). A variable for tests.
var maxBodyTime = 30 * time.Second

// errBodyTooSlow: the body did not arrive within maxBodyTime.
var errBodyTooSlow = errors.New("request body not received in time")

// timedBody fails a read once the body has taken longer than its time:
// checked at each read, so a client trickling bytes is cut off at the
// first read after the deadline, wherever the connection's read deadline
// cannot be set (timeBody).
type timedBody struct {
	io.ReadCloser
	deadline time.Time
}

// timeBody bounds the reading of r's body to maxBodyTime from start (the
// handler's start): at each read (timedBody), and by the connection's
// read deadline, so that a read waiting for a byte fails too and, once
// the handler answered, net/http's drain of the rest of the body does not
// hold the connection while the client trickles it (Caddy's idle-timeout
// reader takes a handler's deadline as a cap on its own). An operator's
// read_body timeout as short or shorter is left to act alone.
func timeBody(w http.ResponseWriter, r *http.Request, start time.Time) io.ReadCloser {
	deadline := start.Add(maxBodyTime)
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.ReadTimeout <= 0 || time.Duration(srv.ReadTimeout) > maxBodyTime {
		_ = http.NewResponseController(w).SetReadDeadline(deadline) // unsupported: the reads' check alone
	}
	return &timedBody{ReadCloser: r.Body, deadline: deadline}
}

// isBodyTooSlow reports whether err ended a body's read for its time: the
// reads' check, or the connection's read deadline.
func isBodyTooSlow(err error) bool {
	return errors.Is(err, errBodyTooSlow) || errors.Is(err, os.ErrDeadlineExceeded)
}

func (b *timedBody) Read(p []byte) (int, error) {
	if !time.Now().Before(b.deadline) {
		return 0, errBodyTooSlow
	}
	n, err := b.ReadCloser.Read(p)
	if err == nil && !time.Now().Before(b.deadline) {
		return n, errBodyTooSlow
	}
	return n, err
}

// bodyTooSlow answers a body that did not arrive in time: 408, and the
// connection closed (its body unread).
func bodyTooSlow(w http.ResponseWriter) error {
	w.Header().Set("Connection", "close")
	return caddyhttp.Error(http.StatusRequestTimeout, fmt.Errorf("%w (%s)", errBodyTooSlow, maxBodyTime))
}
