package enrollclient

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// pending.json is used only when whole: another version, or a file without
// a device name, key, CSR or CA, is refused with its path and field, never
// resumed with defaults.
func TestPendingFileRefused(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	cl := newClient(t, srv, newClock())
	cl.MaxWait = -1
	if _, err := cl.Enroll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("Enroll: %v, want ErrPending", err)
	}
	data, err := os.ReadFile(cl.path(PendingFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsePending(data); err != nil {
		t.Fatalf("the saved file: %v", err)
	}
	for _, c := range []struct {
		field string
		value any
		want  string
	}{
		{"version", 2, "unsupported version 2"},
		{"version", 0, "unsupported version 0"},
		{"device_name", "", "no device name"},
		{"key", "", "key"},
		{"csr", "", PendingFile},
		{"ca_cert", "", "CA certificate"},
	} {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		m[c.field] = c.value
		b, _ := json.Marshal(m)
		if _, err := parsePending(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v: err %v, want one saying %q", c.field, c.value, err, c.want)
		}
	}
}
