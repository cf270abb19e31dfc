package osp

import (
	"strings"
	"testing"
)

// A usage of at most DefaultLimits.MaxBytes flattens to a bounded map:
// every name repeats its ancestors' names and attributes, so an element
// with a long attribute and thousands of children made each child's name
// that long (a 142 KB indication gave 819 MB of CDR details, in 27 s).
// What is past MaxFlattenBytes is left out, and the map says so.
func TestFlattenAllIsBounded(t *testing.T) {
	children := make([]Element, 8000)
	for i := range children {
		children[i] = Element{Name: "b", Value: "1"}
	}
	parent := Element{Name: "X", Attrs: []Attr{{Name: "a", Value: strings.Repeat("A", 32<<10)}}, Children: children}
	small := Element{Name: "Packets", Value: "7"}
	for _, c := range []struct {
		name      string
		es        []Element
		truncated bool
	}{
		{"long attribute, many children", []Element{{Children: []Element{small, parent}}}, true},
		{"small", []Element{{Children: []Element{small, {Name: "Y", Attrs: []Attr{{Name: "t", Value: "v"}}, Children: children[:10]}}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := FlattenAll(c.es)
			n := 0
			for k, v := range m {
				n += len(k) + len(v)
			}
			if n > MaxFlattenBytes+len(FlattenTruncated)+len("true") {
				t.Errorf("%d bytes flattened, limit %d", n, MaxFlattenBytes)
			}
			if _, ok := m[FlattenTruncated]; ok != c.truncated {
				t.Errorf("truncation mark %v, want %v", ok, c.truncated)
			}
			if m["Packets"] != "7" {
				t.Errorf("Packets = %q: what came before the limit was lost", m["Packets"])
			}
			if !c.truncated && len(m) != 11 {
				t.Errorf("%d names, want 11", len(m))
			}
		})
	}
}
