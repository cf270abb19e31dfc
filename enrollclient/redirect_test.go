package enrollclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// redirector is a TLS server in front of an enrolltest server (another
// host:port): it answers the operations in redirect with a redirect to
// the URL the function returns (relative URLs stay on the front), and hands
// everything else, and every path but "/", to the enrolltest server's
// handler.
type redirector struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string][]string // path → operations received there
}

func newRedirector(t *testing.T, srv *enrolltest.Server, code int, redirect map[string]func(front string) string) *redirector {
	t.Helper()
	rd := &redirector{hits: map[string][]string{}}
	rd.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := ""
		if req, err := wire.DecodeRequest(body); err == nil {
			op = req.Operation
		}
		rd.mu.Lock()
		rd.hits[r.URL.Path] = append(rd.hits[r.URL.Path], op)
		rd.mu.Unlock()
		if to := redirect[op]; to != nil && r.URL.Path == "/" {
			w.Header().Set("Location", to(rd.URL))
			w.WriteHeader(code)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.HTTP.Config.Handler.ServeHTTP(w, r)
	}))
	rd.Config.ErrorLog = log.New(io.Discard, "", 0)
	rd.StartTLS()
	t.Cleanup(rd.Close)
	return rd
}

func (rd *redirector) ops(path string) []string {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.hits[path]
}

// The Client built from RootCAPEM (trusting both servers) does not follow a
// redirect of request or retrieve anywhere — Go would re-send the password
// in the body — and follows getcacert's only on the same scheme, host and
// port.
func TestRedirectsNotFollowed(t *testing.T) {
	other := func(srv *enrolltest.Server) func(string) string { return func(string) string { return srv.URL } }
	samePath := func(front string) string { return front + "/moved" }
	plain := func(front string) string { return "http://" + strings.TrimPrefix(front, "https://") + "/" }
	for _, tc := range []struct {
		name   string
		code   int
		op     string
		to     func(srv *enrolltest.Server) func(string) string
		want   string
		follow bool // followed (getcacert on the same host)
	}{
		{"request 307 other host", http.StatusTemporaryRedirect, wire.OpRequest, other, "carries the password", false},
		{"request 308 other host", http.StatusPermanentRedirect, wire.OpRequest, other, "carries the password", false},
		{"request 307 same host", http.StatusTemporaryRedirect, wire.OpRequest, func(*enrolltest.Server) func(string) string { return samePath }, "/moved", false},
		{"request 307 to http", http.StatusTemporaryRedirect, wire.OpRequest, func(*enrolltest.Server) func(string) string { return plain }, "a redirect to http://", false},
		{"retrieve 307 other host", http.StatusTemporaryRedirect, wire.OpRetrieve, other, "carries the password", false},
		{"getcacert other host", http.StatusTemporaryRedirect, wire.OpGetCACert, other, "scheme, host and port", false},
		{"getcacert to http", http.StatusMovedPermanently, wire.OpGetCACert, func(*enrolltest.Server) func(string) string { return plain }, "a redirect to http://", false},
		{"getcacert same host", http.StatusTemporaryRedirect, wire.OpGetCACert, func(*enrolltest.Server) func(string) string { return samePath }, "", true},
		// a 301, 302 or 303 would turn the POST into a GET without the
		// body: never a getcacert, so not followed (and not "too many")
		{"getcacert 301 same host", http.StatusMovedPermanently, wire.OpGetCACert, func(*enrolltest.Server) func(string) string { return samePath }, "only 307 and 308", false},
		{"getcacert 302 same host", http.StatusFound, wire.OpGetCACert, func(*enrolltest.Server) func(string) string { return samePath }, "only 307 and 308", false},
		{"getcacert 303 same host", http.StatusSeeOther, wire.OpGetCACert, func(*enrolltest.Server) func(string) string { return samePath }, "only 307 and 308", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := enrolltest.Config{}
			if tc.op == wire.OpRetrieve {
				cfg.PendingPolls = 1
			}
			srv := enrolltest.New(t, cfg)
			rd := newRedirector(t, srv, tc.code, map[string]func(string) string{tc.op: tc.to(srv)})
			roots := append(srv.RootPEM(), certPEM(rd.Certificate().Raw)...)
			c := &Client{ServerURL: rd.URL + "/", RootCAPEM: roots, CAFingerprint: srv.CAFingerprint(),
				DeviceName: "gw1.example.com", DeviceID: "1", Customer: "0", Username: "user", Password: "pass", Dir: t.TempDir()}
			clk := newClock()
			c.nowFunc, c.sleep = clk.now, clk.sleep
			_, err := c.Enroll(context.Background())
			if tc.follow {
				if err != nil {
					t.Fatal(err)
				}
				if got := rd.ops("/moved"); len(got) != 1 || got[0] != wire.OpGetCACert {
					t.Fatalf("ops at /moved: %v", got)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) || errors.Is(err, ErrHTTPNotAllowed) || retryable(err) ||
				!strings.Contains(err.Error(), "not followed") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.op+": server answered HTTP ") {
				t.Errorf("err = %v", err)
			}
			// the front hands the other operations on; the redirected one must not arrive
			if srv.Saw(tc.op) {
				t.Fatalf("%s reached the redirect's target (%v)", tc.op, srv.Ops())
			}
			if got := rd.ops("/moved"); len(got) != 0 {
				t.Fatalf("followed to /moved: %v", got)
			}
		})
	}
}

// getcacert follows up to 3 redirects on the same scheme, host and port
// (doc.go, Client.HTTPClient), and refuses a 4th as too many, not as a
// redirect elsewhere.
func TestGetCACertRedirectLimit(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	for _, tc := range []struct {
		hops   int
		follow bool
	}{{1, true}, {2, true}, {3, true}, {4, false}} {
		front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var n int
			if _, err := fmt.Sscanf(r.URL.Path, "/hop%d", &n); err != nil {
				n = 0
			}
			if n < tc.hops {
				w.Header().Set("Location", fmt.Sprintf("/hop%d", n+1))
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
			srv.HTTP.Config.Handler.ServeHTTP(w, r)
		}))
		front.Config.ErrorLog = log.New(io.Discard, "", 0)
		front.StartTLS()
		c := &Client{ServerURL: front.URL + "/", RootCAPEM: certPEM(front.Certificate().Raw)}
		ca, err := c.GetCACert(context.Background())
		front.Close()
		if tc.follow {
			if err != nil || !bytes.Equal(ca.Raw, srv.CA.Raw) {
				t.Errorf("%d redirects on the same host: %v", tc.hops, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "redirect") || strings.Contains(err.Error(), "scheme, host and port") {
			t.Errorf("%d redirects: err = %v, want too many redirects", tc.hops, err)
		}
	}
}
