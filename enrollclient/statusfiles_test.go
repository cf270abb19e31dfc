package enrollclient

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// Status judges what Dir holds by the device's clock and the files' modes:
// a certificate outside its validity period is named as such, a key.pem
// that group or others may read is reported, the renewal is due from
// RenewAt on (that instant included), and a saved request keeps the state
// pending whatever else is there.
func TestStatusJudgesFiles(t *testing.T) {
	enrolled := func(t *testing.T) (*Client, *fakeClock, *enrolltest.Server) {
		srv := enrolltest.New(t, enrolltest.Config{})
		clk := newClock()
		c := newClient(t, srv, clk)
		if _, err := c.Enroll(context.Background()); err != nil {
			t.Fatal(err)
		}
		return c, clk, srv
	}
	certOf := func(t *testing.T, c *Client) (nb, na, renewAt time.Time) {
		cert, err := c.readCert(CertFile)
		if err != nil {
			t.Fatal(err)
		}
		return cert.NotBefore, cert.NotAfter, RenewAt(cert, c.renewWindow())
	}
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T) *Client
		state    State
		renewDue bool
		problem  string // a substring of one of Problems; "" = none
	}{
		{"issued", func(t *testing.T) *Client { c, _, _ := enrolled(t); return c }, StateIssued, false, ""},
		{"key readable by the group", func(t *testing.T) *Client {
			c, _, _ := enrolled(t)
			if err := os.Chmod(c.path(KeyFile), 0o640); err != nil {
				t.Fatal(err)
			}
			return c
		}, StateIssued, false, "readable by others (mode 0640"},
		{"expired", func(t *testing.T) *Client {
			c, clk, _ := enrolled(t)
			_, na, _ := certOf(t, c)
			clk.set(na.Add(time.Second))
			return c
		}, StateInvalid, true, "certificate is not valid now (valid "},
		{"not yet valid", func(t *testing.T) *Client {
			c, clk, _ := enrolled(t)
			nb, _, _ := certOf(t, c)
			clk.set(nb.Add(-time.Second))
			return c
		}, StateInvalid, false, "certificate is not valid now (valid "},
		{"at RenewAt", func(t *testing.T) *Client {
			c, clk, _ := enrolled(t)
			_, _, ra := certOf(t, c)
			clk.set(ra)
			return c
		}, StateIssued, true, ""},
		{"just before RenewAt", func(t *testing.T) *Client {
			c, clk, _ := enrolled(t)
			_, _, ra := certOf(t, c)
			clk.set(ra.Add(-time.Nanosecond))
			return c
		}, StateIssued, false, ""},
		{"renewal pending, certificate expired", func(t *testing.T) *Client {
			c, clk, srv := enrolled(t)
			srv.Update(func(cfg *enrolltest.Config) { cfg.Manual = true })
			c.MaxWait = -1
			if _, _, err := c.Renew(context.Background(), true); !errors.Is(err, ErrPending) {
				t.Fatalf("Renew: %v, want ErrPending", err)
			}
			_, na, _ := certOf(t, c)
			clk.set(na.Add(time.Second))
			return c
		}, StatePending, true, "certificate is not valid now (valid "},
		{"request pending beside a stray key.pem", func(t *testing.T) *Client {
			srv := enrolltest.New(t, enrolltest.Config{Manual: true})
			c := newClient(t, srv, newClock())
			c.MaxWait = -1
			if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrPending) {
				t.Fatalf("Enroll: %v, want ErrPending", err)
			}
			if err := os.WriteFile(c.path(KeyFile), []byte("stray"), 0o600); err != nil {
				t.Fatal(err)
			}
			return c
		}, StatePending, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.setup(t)
			st, err := c.Status()
			if err != nil {
				t.Fatal(err)
			}
			if st.State != tc.state {
				t.Errorf("State = %s, want %s (problems %q)", st.State, tc.state, st.Problems)
			}
			if st.Cert != nil && st.Cert.RenewDue != tc.renewDue {
				t.Errorf("RenewDue = %v, want %v", st.Cert.RenewDue, tc.renewDue)
			}
			found := tc.problem == ""
			for _, p := range st.Problems {
				found = found || strings.Contains(p, tc.problem)
			}
			if !found || tc.problem == "" && len(st.Problems) != 0 {
				t.Errorf("Problems = %q, want one saying %q", st.Problems, tc.problem)
			}
		})
	}
}
