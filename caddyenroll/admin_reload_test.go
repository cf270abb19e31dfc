package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A reload that fails keeps the running config, and the admin API keeps
// acting on its enroll app. Caddy replaces the admin endpoint while it
// provisions the new config, before it knows the config will run: the
// admin module of a config whose enroll app failed answered 404 ("the
// enroll app is not configured") until the next reload that succeeded,
// and one whose enroll app was provisioned but whose http app failed
// acted on that app, cleaned up without ever starting.
func TestAdminAfterFailedReload(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "adm") // a short path: a socket's is bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "admin.sock")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	running := write("running.conf", "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	other := write("other.conf", "enroll enabled\ngroup \"\"\ndevice gw2.example \"\" enabled\n")
	empty := write("empty.conf", "")
	t.Cleanup(func() { _ = caddy.Stop() })
	load := func(confFile string, apps map[string]any) error {
		apps["enroll"] = map[string]any{"config_file": confFile}
		cfg, _ := json.Marshal(map[string]any{
			"admin":   map[string]any{"listen": "unix/" + sock, "config": map[string]any{"persist": false}},
			"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")},
			"apps":    apps,
		})
		return caddy.Load(cfg, true)
	}
	// a connection each: every load replaces the admin server, closing the
	// previous one's connections (a kept one answered EOF)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	devices := func(when string) {
		t.Helper()
		// the previous admin server is shut down in the background, after
		// Load returns: a connection it accepted meanwhile on the shared
		// socket is closed unanswered (EOF), and is made again
		resp, err := client.Get("http://localhost/enroll/devices")
		for try := 1; errors.Is(err, io.EOF) && try < 10; try++ {
			time.Sleep(20 * time.Millisecond)
			resp, err = client.Get("http://localhost/enroll/devices")
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"gw1.example"`) || strings.Contains(string(b), "gw2") {
			t.Fatalf("%s: GET /enroll/devices answered %d %s, want the running config's device gw1.example", when, resp.StatusCode, b)
		}
	}

	if err := load(running, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	devices("running")

	// the new config's enroll app fails: its configuration file is empty
	if err := load(empty, map[string]any{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("loading a config whose file is empty: %v", err)
	}
	devices("after a reload whose enroll app failed")

	// the new config's enroll app is provisioned, its http app fails
	badHTTP := map[string]any{"http": map[string]any{"servers": map[string]any{"s": map[string]any{
		"listen": []string{"unix/" + filepath.Join(sockDir, "http.sock")},
		"routes": []any{map[string]any{"handle": []any{map[string]any{"handler": "enroll", "max_body": 2 << 20}}}},
	}}}}
	if err := load(other, badHTTP); err == nil || !strings.Contains(err.Error(), "max_body") {
		t.Fatalf("loading a config whose http app fails: %v", err)
	}
	devices("after a reload whose http app failed")
}
