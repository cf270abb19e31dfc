package caddyenroll

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's Caddyfile blocks show every option the enroll app, enroll
// handler and osp handler parse (caddyfile.go), and no option they do not.
func TestReadmeCaddyfileOptions(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("caddyfile.go")
	if err != nil {
		t.Fatal(err)
	}
	parsed := map[string]bool{}
	for _, c := range regexp.MustCompile(`(?m)^\s*case ("[a-z0-9_]+"(?:, "[a-z0-9_]+")*):`).FindAllStringSubmatch(string(src), -1) {
		for _, o := range strings.Split(c[1], ", ") {
			parsed[strings.Trim(o, `"`)] = true
		}
	}
	if len(parsed) < 30 {
		t.Fatalf("found only the options %v in caddyfile.go", parsed)
	}
	// the words of Caddy's own directives and options in the blocks (and
	// of caddy-events-exec's events option)
	caddys := map[string]bool{"events": true, "on": true, "{": true, "}": true, "#": true, "enroll": true, "servers": true, "strict_sni_host": true,
		"tls": true, "client_auth": true, "mode": true, "trust_pool": true, "verifier": true, "handle": true, "osp": true,
		"default_sni": true}
	shown := map[string]bool{}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README has no caddyfile block")
	}
	for _, b := range blocks {
		for _, line := range strings.Split(b[1], "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || caddys[f[0]] || strings.ContainsAny(f[0], ".:") { // a site address
				continue
			}
			shown[f[0]] = true
			if !parsed[f[0]] {
				t.Errorf("README's Caddyfile shows %q, which caddyfile.go does not parse", f[0])
			}
		}
	}
	for o := range parsed {
		if !shown[o] {
			t.Errorf("caddyfile.go parses %q, which no Caddyfile block of the README shows", o)
		}
	}
}

// A README Caddyfile with an HTTPS site without host (gateways that send no
// SNI) names the certificate they get with default_sni: without it Caddy
// has no certificate for them, and ends the handshake with an internal
// error alert.
func TestReadmeHostlessSiteHasDefaultSNI(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	hostless := regexp.MustCompile(`(?m)^https://:[0-9]+ \{`)
	defaultSNI := regexp.MustCompile(`(?m)^\tdefault_sni [^ #]+`)
	n := 0
	for _, b := range regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if !hostless.MatchString(b[1]) {
			continue
		}
		n++
		if !defaultSNI.MatchString(b[1]) {
			t.Errorf("README's Caddyfile with a site without host sets no default_sni in its global options:\n%s", b[1])
		}
	}
	if n == 0 {
		t.Fatal("README has no Caddyfile with an HTTPS site without host (the OSP example)")
	}
}
