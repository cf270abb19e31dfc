package enrollclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The server's nonce of a pending request is kept from the answer that
// gave it: a later pending answer without one does not erase it.
func TestServerNonceKept(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	// srv's answers, but retrieves answered without the server nonce
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		srv.HTTP.Config.Handler.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		if req, err := wire.DecodeRequest(body); err == nil && req.Operation == wire.OpRetrieve {
			if ans, err := wire.DecodeResponse(out); err == nil {
				ans.Nonce = ""
				out = wire.EncodeResponse(*ans)
			}
		}
		w.Header().Set("Content-Type", wire.ContentTypeResponse)
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, srv, newClock())
	c.ServerURL = ts.URL + strings.TrimPrefix(srv.URL, srv.HTTP.URL)
	c.HTTPClient = ts.Client()
	c.MaxWait = -1
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("Enroll: %v, want ErrPending", err)
	}
	st, err := c.Status()
	if err != nil || st.Pending == nil || st.Pending.ServerNonce == "" {
		t.Fatalf("after the request: %+v %v, want a server nonce", st, err)
	}
	nonce := st.Pending.ServerNonce
	if _, err := c.Poll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("Poll: %v, want ErrPending", err)
	}
	if st, _ := c.Status(); st.Pending == nil || st.Pending.ServerNonce != nonce || st.Pending.Polls != 2 {
		t.Errorf("after a retrieve answered without a nonce: %+v, want server nonce %q and 2 polls", st.Pending, nonce)
	}
}
