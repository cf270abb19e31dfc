package caddyenroll

import (
	"errors"
	"fmt"
	"io"
	"net/http"
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
// first read after the deadline (one that sends nothing at all waits for
// the server's read_idle_timeout, 1 minute by default).
type timedBody struct {
	io.ReadCloser
	deadline time.Time
}

// timeBody bounds the reading of body to maxBodyTime from start (the
// handler's start).
func timeBody(body io.ReadCloser, start time.Time) io.ReadCloser {
	return &timedBody{ReadCloser: body, deadline: start.Add(maxBodyTime)}
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
