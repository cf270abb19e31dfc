package caddyenroll

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// The shipped demos publish their account's password and approve known
// devices at once: they listen on loopback only, never on every interface
// of the machine they are tried on.
func TestShippedCaddyfilesListenOnLoopback(t *testing.T) {
	for _, file := range []string{"Caddyfile.example", "examples/legacy.Caddyfile"} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), file))
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt(b, map[string]any{"filename": file})
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Listen []string `json:"listen"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			if len(cfg.Apps.HTTP.Servers) == 0 {
				t.Fatal("no HTTP server")
			}
			for name, srv := range cfg.Apps.HTTP.Servers {
				for _, l := range srv.Listen {
					na, err := caddy.ParseNetworkAddress(l)
					if err != nil {
						t.Fatalf("server %s: listen %q: %v", name, l, err)
					}
					ip, err := netip.ParseAddr(na.Host)
					if err != nil || !ip.IsLoopback() {
						t.Errorf("server %s listens on %q: not a loopback address (add `bind 127.0.0.1` to the site)", name, l)
					}
				}
			}
		})
	}
}
