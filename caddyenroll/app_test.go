package caddyenroll

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Validate refuses login-limit and device address settings that would be
// ignored or misread; it runs once Provision has set the defaults.
func TestValidateLimitsAndAddresses(t *testing.T) {
	cases := []struct {
		name     string
		failures int
		base     time.Duration
		max      time.Duration
		addrs    map[string]string
		err      string // "" for valid
	}{
		{"defaults", 5, time.Second, 15 * time.Minute, nil, ""},
		{"no failures allowed beyond the first", 1, time.Second, time.Second, nil, ""},
		{"negative failures", -3, time.Second, 15 * time.Minute, nil, "failures_allowed must not be negative (0 means the default, 5), not -3"},
		{"base longer than max", 5, time.Hour, time.Second, nil, "lockout: the first lockout (lockout_base, 1h0m0s) must not be longer than the longest (lockout_max, 1s)"},
		{"negative base", 5, -time.Second, time.Minute, nil, "lockout durations (lockout_base, lockout_max) must not be negative, not -1s and 1m0s"},
		{"address", 5, time.Second, time.Minute, map[string]string{"gw1": "192.0.2.1:5061", "gw2": "[2001:db8::1]", "gw3": "gw3.example.com"}, ""},
		{"port too large", 5, time.Second, time.Minute, map[string]string{"ghost": "1.2.3.4:99999"}, `device_address ghost: "1.2.3.4:99999": invalid port "99999" (want 1 to 65535)`},
		{"port zero", 5, time.Second, time.Minute, map[string]string{"gw1": "gw1:0"}, `invalid port "0"`},
		{"empty address", 5, time.Second, time.Minute, map[string]string{"gw1": ""}, "device_address gw1: empty address"},
		{"empty name", 5, time.Second, time.Minute, map[string]string{"": "192.0.2.1"}, "device_address: empty device name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
				NonceRetention: caddy.Duration(time.Hour), FailuresAllowed: c.failures,
				LockoutBase: caddy.Duration(c.base), LockoutMax: caddy.Duration(c.max), DeviceAddresses: c.addrs}
			err := a.Validate()
			wantErr(t, err, c.err)
		})
	}
}

// An operator-supplied CA (cert_file) with settings that only a generated
// CA has is refused, naming them, rather than ignoring them.
func TestAuthorityCertFileRefusesGeneratedSettings(t *testing.T) {
	for _, c := range []struct {
		au   Authority
		want string
	}{
		{Authority{CertFile: "ca.pem", KeyFile: "ca.key"}, ""},
		{Authority{CertFile: "ca.pem", KeyFile: "ca.key", Validity: caddy.Duration(time.Hour), CRLValidity: caddy.Duration(time.Hour)}, ""},
		{Authority{CertFile: "ca.pem", KeyFile: "ca.key", Intermediate: true}, "cert_file supplies the CA: intermediate apply only"},
		{Authority{CertFile: "ca.pem", KeyFile: "ca.key", Algorithm: "p384", CommonName: "x", Organization: "o", RootValidity: caddy.Duration(time.Hour)},
			"algorithm, common_name, organization, root_validity apply only"},
		{Authority{Algorithm: "p384", Intermediate: true, CommonName: "x"}, ""},
		{Authority{Validity: caddy.Duration(-time.Hour)}, "validity must not be negative (0 means the default), not -1h0m0s"},
		{Authority{RootValidity: caddy.Duration(-time.Hour)}, "root_validity must not be negative"},
		{Authority{CRLValidity: -1}, "crl_validity must not be negative (0 means the default), not -1ns"},
	} {
		err := c.au.validate(profileModern)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.au, err, c.want)
		}
	}
}

// A site naming a CA the app lacks is told how to add it in either config
// form.
func TestAuthorityMissingNamesBothForms(t *testing.T) {
	a := &App{}
	_, err := a.authority(profileLegacy)
	wantErr(t, err, "add `ca legacy` to the global enroll option; in JSON, \"legacy\" to the app's authorities")
}

// A JSON config naming a profile without settings ("legacy": null) gets
// that CA with its defaults, as `ca legacy` without a block does.
func TestAuthorityNullIsDefaults(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "clearinghouse.conf")
	if err := os.WriteFile(conf, []byte("group \"\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	app := loadEnrollApp(t, filepath.Join(dir, "data"), map[string]any{"config_file": conf,
		"authorities": map[string]any{"modern": nil, "legacy": nil}})
	for _, profile := range []string{profileModern, profileLegacy} {
		if _, err := app.authority(profile); err != nil {
			t.Error(err)
		}
	}
}

// A JSON number is nanoseconds: a duration too short to be meant (seconds
// or days written as a plain number) is refused, saying so, rather than
// polling the file in a busy loop, making lockouts vanish or issuing
// certificates and CRLs already expired.
func TestValidateJSONNanoseconds(t *testing.T) {
	valid := func() *App {
		return &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
			NonceRetention: caddy.Duration(time.Hour), FailuresAllowed: 5, WatchInterval: caddy.Duration(2 * time.Second),
			LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(15 * time.Minute)}
	}
	hint := `(a number in JSON is nanoseconds: write a duration such as "2s")`
	cases := []struct {
		name string
		set  func(*App)
		err  string
	}{
		{"defaults", func(*App) {}, ""},
		{"watch_interval 100ms", func(a *App) { a.WatchInterval = caddy.Duration(100 * time.Millisecond) }, ""},
		{"watch_interval off", func(a *App) { a.WatchInterval = -1 }, ""},
		{"watch_interval 2", func(a *App) { a.WatchInterval = 2 }, "watch_interval must be at least 10ms (negative: only on reload), not 2ns " + hint},
		{"lockout_base 1", func(a *App) { a.LockoutBase = 1 }, "lockout_base must be at least 1ms, not 1ns " + hint},
		{"lockout 1ms", func(a *App) {
			a.LockoutBase, a.LockoutMax = caddy.Duration(time.Millisecond), caddy.Duration(time.Millisecond)
		}, ""},
		{"validity 365", func(a *App) { a.Authorities = map[string]*Authority{"modern": {Validity: 365}} },
			`authorities "modern": validity must be at least 1m (0 means the default), not 365ns ` + hint},
		{"root_validity 10", func(a *App) { a.Authorities = map[string]*Authority{"modern": {RootValidity: 10}} }, "root_validity must be at least 1m"},
		{"crl_validity 7", func(a *App) { a.Authorities = map[string]*Authority{"legacy": {CRLValidity: 7}} }, `authorities "legacy": crl_validity must be at least 1m`},
		{"validity 1m", func(a *App) { a.Authorities = map[string]*Authority{"modern": {Validity: caddy.Duration(time.Minute)}} }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := valid()
			c.set(a)
			wantErr(t, a.Validate(), c.err)
		})
	}
}
