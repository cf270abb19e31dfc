package caddyenroll

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The package doc and the README's layout name every module this package
// registers, by the ID `caddy list-modules` shows.
func TestModulesDocumented(t *testing.T) {
	pkg := reflect.TypeOf(App{}).PkgPath()
	var ids []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		// (the tests register a storage module of their own)
		if reflect.Indirect(reflect.ValueOf(info.New())).Type().PkgPath() == pkg && !strings.Contains(id, "_test") {
			ids = append(ids, id)
		}
	}
	if len(ids) < 6 {
		t.Fatalf("found only the modules %v", ids)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !strings.Contains(string(doc), "//   - "+id) {
			t.Errorf("doc.go does not list the module %s", id)
		}
		if !strings.Contains(string(readme), "`"+id+"`") {
			t.Errorf("README does not name the module %s", id)
		}
	}
}

// The package doc's map of the package names every file that is not a
// test, so that it stays a map of the package as it is.
func TestFilesDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "doc.go" {
			continue
		}
		if !strings.Contains(string(doc), f) {
			t.Errorf("doc.go's map of the package does not name %s", f)
		}
	}
}
