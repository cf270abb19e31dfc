package caddyenroll

import (
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// `caddy help enroll` names every subcommand, in the usage line and in the
// list, whose descriptions start in one column.
func TestEnrollHelpListsSubcommands(t *testing.T) {
	c, ok := caddycmd.Commands()["enroll"]
	if !ok {
		t.Fatal("enroll command not registered")
	}
	root := &cobra.Command{Use: "enroll"}
	c.CobraFunc(root)
	var lines []string
	for _, l := range strings.Split(c.Long, "\n") {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   ") {
			lines = append(lines, l)
		}
	}
	col := 0
	for _, l := range lines {
		i := strings.Index(l[2:], "  ")
		if i < 0 {
			t.Errorf("list line without a description: %q", l)
			continue
		}
		d := 2 + i + len(l[2+i:]) - len(strings.TrimLeft(l[2+i:], " "))
		if col == 0 {
			col = d
		}
		if d != col {
			t.Errorf("description at column %d, not %d: %q", d, col, l)
		}
	}
	for _, sub := range root.Commands() {
		name := sub.Name()
		if !strings.Contains(" "+c.Usage+" ", " "+name+" ") {
			t.Errorf("usage %q lacks %s", c.Usage, name)
		}
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "  "+sub.Use+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("help list lacks %q", sub.Use)
		}
	}
	if n := len(root.Commands()); n != 11 {
		t.Errorf("%d subcommands, want 11", n)
	}
}
