package caddyenroll

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// Every JSON field of the config types has a doc comment of its own: Caddy's
// module documentation is made from them.
func TestConfigFieldsDocumented(t *testing.T) {
	types := map[string]bool{"App": true, "Authority": true, "Account": true, "Handler": true,
		"OSPHandler": true, "TrustPool": true, "ClientVerifier": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !types[ts.Name.Name] {
				return true
			}
			seen++
			for _, field := range ts.Type.(*ast.StructType).Fields.List {
				if field.Tag == nil {
					continue
				}
				for _, id := range field.Names {
					if id.IsExported() && (field.Doc == nil || field.Doc.Text() == "") {
						t.Errorf("%s: %s.%s has no doc comment", fset.Position(id.Pos()), ts.Name.Name, id.Name)
					}
				}
				if len(field.Names) > 1 {
					t.Errorf("%s: %s declares %d fields with one doc comment", fset.Position(field.Pos()), ts.Name.Name, len(field.Names))
				}
			}
			return false
		})
	}
	if seen != len(types) {
		t.Errorf("found %d of the %d config types", seen, len(types))
	}
}
