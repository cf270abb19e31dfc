package caddyenroll

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --address takes what Caddy's admin listen takes — host:port, or a unix
// socket (unix//path) — and the http:// URL of the endpoint, as an
// operator copies it from a browser or curl: that one failed with "dial
// http:: unknown network http:". An https:// URL (remote administration,
// which wants a client certificate the commands do not present) and a URL
// with a path are refused, saying why, without a request.
func TestAdminCommandAddresses(t *testing.T) {
	tcp := fakeAdmin(t, `[]`)

	sockDir, err := os.MkdirTemp("", "adm") // a short path: a socket's is bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[]`))
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		address, want string // want: "" to succeed, else the error's words
	}{
		{tcp, ""},
		{"unix/" + sock, ""},
		{"http://" + tcp, ""},
		{"http://" + tcp + "/", ""},
		{"HTTP://" + tcp, ""},
		{"https://" + tcp, "remote administration"},
		{"http://" + tcp + "/config/", "no path"},
		{"http://user:pw@" + tcp, "no path"},
		{"http://" + tcp + "?x=1", "no path"},
		{"http://user:secret@[" + tcp, "not a URL"},
		{tcp + "/config/", "not a network address"}, // was Caddy's "unknown network"
		{"localhost", "not a network address"},
		{"fd/3", "a file descriptor"},           // was "unknown network"
		{"localhost:2019-2020", "a port range"}, // was Caddy's "invalid admin address localhost:2019-2020: <nil>"
	} {
		out, _, err := runEnrollCommand(t, "pending", "--address", c.address)
		switch {
		case c.want == "" && (err != nil || !strings.Contains(out, "ID")):
			t.Errorf("--address %s: %v, printed %q; want the (empty) list", c.address, err, out)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("--address %s: %v, want an error saying %q", c.address, err, c.want)
		case err != nil && strings.Contains(err.Error(), "pw") || err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("--address %s: the error repeats the password: %v", c.address, err)
		}
	}
}

// The address an --address is dialed at: a network address as given
// (the admin listen option's forms: a unix socket with its permission
// bits, a tcp4 or tcp6 network, an IPv6 literal), an http:// URL as its
// host and port, the URL's port 80 when it gives none (taken alone,
// "localhost" was dialed at port 0).
func TestAdminListenAddress(t *testing.T) {
	for _, c := range []struct{ address, want string }{
		{"localhost:2019", "localhost:2019"},
		{":2019", ":2019"},
		{"[::1]:2019", "[::1]:2019"},
		{"tcp4/127.0.0.1:2019", "tcp4/127.0.0.1:2019"},
		{"tcp6/[::1]:2019", "tcp6/[::1]:2019"},
		{"unix//run/caddy/admin.sock", "unix//run/caddy/admin.sock"},
		{"unix//run/caddy/admin.sock|0660", "unix//run/caddy/admin.sock|0660"},
		{"http://localhost:2019", "localhost:2019"},
		{"http://[::1]:2019/", "[::1]:2019"},
		{"http://localhost", "localhost:80"},
		{"http://[::1]", "[::1]:80"},
		{"http://127.0.0.1/", "127.0.0.1:80"},
	} {
		if got, err := adminListenAddress(c.address); err != nil || got != c.want {
			t.Errorf("adminListenAddress(%q) = %q, %v; want %q", c.address, got, err, c.want)
		}
	}
}
