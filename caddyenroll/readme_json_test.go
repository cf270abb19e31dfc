package caddyenroll

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The JSON the README's JSON section shows decodes, with Caddy's strict
// decoding, into the modules it names, and shows each of them.
func TestReadmeJSON(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(b)
	start := strings.Index(section, "\n### JSON\n")
	if start < 0 {
		t.Fatal("README has no JSON section")
	}
	section = section[start+1:]
	section = section[:strings.Index(section, "\n### ")]
	modules := map[string]func() any{
		"enroll app": func() any { return new(App) },
		"enroll":     func() any { return new(Handler) },
		"osp":        func() any { return new(OSPHandler) },
		"trust pool": func() any { return new(TrustPool) },
		"verifier":   func() any { return new(ClientVerifier) },
	}
	seen := map[string]bool{}
	check := func(kind string, v map[string]any, drop string) {
		delete(v, drop)
		raw, _ := json.Marshal(v)
		if err := caddy.StrictUnmarshalJSON(raw, modules[kind]()); err != nil {
			t.Errorf("README's %s JSON %s: %v", kind, raw, err)
		}
		seen[kind] = true
	}
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			if apps, ok := n["apps"].(map[string]any); ok {
				if app, ok := apps["enroll"].(map[string]any); ok {
					check("enroll app", app, "")
				}
			}
			switch {
			case n["handler"] == "enroll" || n["handler"] == "osp":
				check(n["handler"].(string), n, "handler")
			case n["provider"] == "enroll":
				check("trust pool", n, "provider")
			case n["verifier"] == "enroll":
				check("verifier", n, "verifier")
			}
			for _, v := range n {
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	for rest := section; ; {
		i := strings.Index(rest, "```json\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```json\n"):]
		block := rest[:strings.Index(rest, "```")]
		dec := json.NewDecoder(bytes.NewReader([]byte(block)))
		for {
			var v any
			if err := dec.Decode(&v); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("README JSON block does not parse: %v\n%s", err, block)
			}
			walk(v)
		}
	}
	for kind := range modules {
		if !seen[kind] {
			t.Errorf("README's JSON section shows no %s", kind)
		}
	}
}
