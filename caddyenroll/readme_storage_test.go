package caddyenroll

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's table of the state in Caddy's storage names every key the
// app keeps under clearinghouse/enroll/.
func TestReadmeStorageKeys(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n### State in Caddy's storage\n")
	if start < 0 {
		t.Fatal("README has no section State in Caddy's storage")
	}
	section := readme[start+1:]
	section = section[:strings.Index(section, "\n## ")]
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`path\.Join\(statePrefix, "([^"]+)"`)
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
	}
	if len(seen) < 8 {
		t.Fatalf("found only the storage keys %v", seen)
	}
	for k := range seen {
		// a key in the table's first column: `enroll/NAME` or `enroll/NAME/…`
		if !strings.Contains(section, "`enroll/"+k+"`") && !strings.Contains(section, "`enroll/"+k+"/") {
			t.Errorf("README's storage table does not name enroll/%s", k)
		}
	}
}
