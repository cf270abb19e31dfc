package enrollclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// A Client without an HTTPClient builds a new transport for every
// exchange, so a connection left idle in it is never used again: it must
// be closed once the answer is read, not held open on both ends until the
// transport's idle timeout (90 s), one more for every retrieve of a poll.
func TestExchangeLeavesNoIdleConnection(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	front := httptest.NewUnstartedServer(srv.HTTP.Config.Handler)
	front.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	front.StartTLS()
	defer front.Close()

	c := &Client{ServerURL: front.URL + "/", RootCAPEM: certPEM(front.Certificate().Raw)}
	const exchanges = 3
	for range exchanges {
		if _, err := c.GetCACert(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(open)
		mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open 5 s after %d getcacerts", n, exchanges)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
