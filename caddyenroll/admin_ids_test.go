package caddyenroll

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// A request id in an approve or reject path that is not one — not hex, or
// longer than an id — is refused (400) before storage is asked: a 32
// characters long one was read as a storage key as it came, and one with a
// control character failed there (500, an ERROR log line giving the
// storage's path) where a typo is a 400; one of 10,000 characters was
// repeated whole in the answer and the log.
func TestAdminRequestIDsAreChecked(t *testing.T) {
	h, _ := approvingApp(t)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	for _, id := range []string{
		"%00" + strings.Repeat("a", 31),
		strings.Repeat("z", 32),
		"..%5C" + strings.Repeat("a", 29),
		"abcdef%0Aforged%20log%20line",
		strings.Repeat("a", 10000),
		"abcdefg",
	} {
		for _, route := range []string{"approve", "reject"} {
			code, body := adminAnswer(ad, "POST", "/enroll/"+route+"/"+id, "")
			if code != 400 || !strings.Contains(body, "not a request id") || len(body) > 300 {
				t.Errorf("%s %.40q: %d %.300s, want 400 saying it is not a request id, briefly", route, id, code, body)
			}
		}
	}
	// ids and prefixes in any case are still looked up
	req := requestPending(t, h, "new1.example")
	for _, id := range []string{strings.ToUpper(req.ID[:8]), req.ID[:6]} {
		if code, body := adminAnswer(ad, "POST", "/enroll/reject/"+id, ""); code != 200 && code != 409 {
			t.Errorf("reject %s: %d %s", id, code, body)
		}
	}
}
