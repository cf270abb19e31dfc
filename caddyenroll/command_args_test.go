package caddyenroll

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// A subcommand that takes no arguments refuses one, before it asks the
// admin API anything: `caddy enroll ca legacy` printed the modern CA (whose
// fingerprint an operator would then give legacy devices), `requests
// rejected` listed every request. Path arguments that are not one path
// segment are refused too.
func TestAdminCommandsRefuseStrayArguments(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/enroll/ca/modern":
			w.Write([]byte(`{"profile": "modern", "sha256_fingerprint": "AA:BB", "certificate_pem": "-----BEGIN CERTIFICATE-----\n"}`))
		case r.URL.Path == "/enroll/devices", r.URL.Path == "/enroll/pending", r.URL.Path == "/enroll/requests":
			w.Write([]byte(`[]`))
		default:
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, args := range [][]string{
		{"ca", "legacy"},
		{"requests", "rejected"},
		{"pending", "3f9c1a2b"},
		{"devices", "gw1.example"},
		{"revoke", "gw1.example", "--device", "gw2.example"},
		{"cdrs", "purge", "2024-01-01", "--before", "2024-01-01"},
		// path arguments that would reach other admin routes: Go's client
		// followed the redirect of approve/../../load to Caddy's /load
		// (an empty config: the server stopped)
		{"approve", "../../load"},
		{"reject", "1101d6?x=1"},
		{"certificate", "../ca"},
		{"certificate", "."},
		{"approve", "%2e%2e"},
		{"ca", "--profile", "../devices"},
		{"approve", "ab cd"},
	} {
		c := caddycmd.Commands()["enroll"]
		root := &cobra.Command{Use: "enroll", SilenceErrors: true, SilenceUsage: true}
		c.CobraFunc(root)
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(args, "--address", addr))
		asked.Store(0)
		err := root.Execute()
		if err == nil || asked.Load() != 0 {
			t.Errorf("enroll %s: error %v, %d admin request(s), printed %q; want the argument refused", strings.Join(args, " "), err, asked.Load(), out.String())
		}
	}
	// without the stray argument, they run
	c := caddycmd.Commands()["enroll"]
	root := &cobra.Command{Use: "enroll", SilenceErrors: true, SilenceUsage: true}
	c.CobraFunc(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"ca", "--address", addr})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "AA:BB") {
		t.Fatalf("enroll ca: %v %q", err, out.String())
	}
}
