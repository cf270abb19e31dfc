package caddyenroll

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestCaddyfileNonceRetention(t *testing.T) {
	cases := []struct {
		name, option string
		want         time.Duration
		err          string
	}{
		{"absent", "", 0, ""},
		{"hours", "nonce_retention 36h", 36 * time.Hour, ""},
		{"days", "nonce_retention 7d", 7 * 24 * time.Hour, ""},
		{"no argument", "nonce_retention", 0, "wrong argument count"},
		{"two arguments", "nonce_retention 1h 2h", 0, "wrong argument count"},
		{"not a duration", "nonce_retention soon", 0, "invalid duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("enroll {\n\tconfig_file clearinghouse.conf\n\t" + c.option + "\n}")
			v, err := parseGlobalOption(d, nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			app, ok := v.(httpcaddyfile.App)
			if !ok || app.Name != "enroll" {
				t.Fatalf("parsed into %#v, want the enroll app", v)
			}
			if c.want == 0 && strings.Contains(string(app.Value), "nonce_retention") {
				t.Errorf("JSON names nonce_retention though the Caddyfile does not: %s", app.Value)
			}
			var got App
			if err := json.Unmarshal(app.Value, &got); err != nil {
				t.Fatal(err)
			}
			if time.Duration(got.NonceRetention) != c.want || got.ConfigFile != "clearinghouse.conf" {
				t.Errorf("nonce_retention %v, config_file %q; want %v and clearinghouse.conf (JSON %s)",
					time.Duration(got.NonceRetention), got.ConfigFile, c.want, app.Value)
			}
		})
	}
}

// A second global enroll option is refused with its position.
func TestCaddyfileEnrollOptionOnce(t *testing.T) {
	src := "{\n\tenroll {\n\t\tconfig_file a.conf\n\t}\n\tenroll {\n\t\tconfig_file b.conf\n\t}\n}\n:0 {\n\tenroll\n}\n"
	_, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "may appear only once") || !strings.Contains(err.Error(), "Caddyfile:5") {
		t.Fatalf("error %v, want one naming Caddyfile:5", err)
	}
}
