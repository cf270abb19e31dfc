package caddyenroll

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func init() { caddy.RegisterModule(failingApp{}) }

// failingApp is an app whose Start fails, as the http app's does when a
// new site's port is taken.
type failingApp struct{}

func (failingApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "enroll_test_failing_app", New: func() caddy.Module { return new(failingApp) }}
}
func (failingApp) Start() error { return errors.New("port taken") }
func (failingApp) Stop() error  { return nil }

// A config that fails to start (another app's Start fails: Caddy starts
// apps in map order, so the enroll app may have started before) never
// runs: it must not name its CA in the configuration file nor clear the
// enrolled flags, which would leave the config still running (a failed
// `caddy reload`) with a CA the file no longer names, issuing nothing.
func TestFailedStartLeavesTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ch.conf")
	orig := "crypto ''\nenroll enabled\ngroup \"\"\ndevice d1.example \"\" enabled enrolled\n"
	if err := os.WriteFile(conf, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "enroll_test_counted", "root": filepath.Join(dir, "storage")},
		"apps": map[string]any{
			"enroll":                  map[string]any{"config_file": conf, "approval": "auto"},
			"enroll_test_failing_app": map[string]any{},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	// the apps start in random order: often enough that the enroll app
	// starts first
	for range 20 {
		if err := caddy.Load(cfg, true); err == nil {
			t.Fatal("a config whose app fails to start loaded")
		}
		if got, _ := os.ReadFile(conf); string(got) != orig {
			t.Fatalf("a config that failed to start edited the file:\n%s", got)
		}
	}
}
