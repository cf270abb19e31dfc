package caddyenroll

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// runEnrollCommand runs `caddy enroll ARGS…` in this process and returns
// its output and error.
func runEnrollCommand(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	c, ok := caddycmd.Commands()["enroll"]
	if !ok {
		t.Fatal("enroll command not registered")
	}
	root := &cobra.Command{Use: "enroll", SilenceErrors: true}
	c.CobraFunc(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// fakeAdmin serves answer on every request, as the admin API would.
func fakeAdmin(t *testing.T, answer string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// An answer larger than the commands read, or not JSON, fails the command
// (non-zero exit) and prints nothing: a cut list must not pass for a whole
// one.
func TestAdminCommandRefusesCutAnswers(t *testing.T) {
	defer func(n int) { maxAdminAnswer = n }(maxAdminAnswer)
	maxAdminAnswer = 1000
	list := `[{"id": "` + strings.Repeat("a", 32) + `", "device": "gw1.example", "state": "pending"}]`
	big := "[" + strings.Repeat(`{"id": "x"},`, 200) + `{"id": "y"}]`
	for _, c := range []struct {
		name, args, answer, want string
	}{
		{"too large", "requests", big, "larger than 1000 bytes"},
		{"too large, not a list", "ca", `{"text": "` + strings.Repeat("x", 2000) + `"}`, "larger than 1000 bytes"},
		{"cut", "pending", list[:len(list)-10], "not valid JSON"},
		{"not JSON", "devices", "<html>proxy error</html>", "not valid JSON"},
		{"empty", "revoke --serial 1f", "", "not valid JSON"},
	} {
		addr := fakeAdmin(t, c.answer)
		out, _, err := runEnrollCommand(t, append(strings.Fields(c.args), "--address", addr)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || out != "" {
			t.Errorf("%s: error %v, want one saying %q and nothing printed; printed:\n%s", c.name, err, c.want, out)
		}
	}
	// a whole answer is printed
	out, _, err := runEnrollCommand(t, "pending", "--address", fakeAdmin(t, list))
	if err != nil || !strings.Contains(out, "gw1.example") {
		t.Errorf("a whole list: %v\n%s", err, out)
	}
}
