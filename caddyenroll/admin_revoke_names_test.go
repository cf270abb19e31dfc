package caddyenroll

import (
	"context"
	"encoding/json"
	"testing"

	"go.uber.org/zap"
)

// A revocation by device name takes the device under any spelling that
// names it — spaces around it, another case, a trailing dot, brackets —
// and clears its enrolled flag as well as revoking its certificates. In
// brackets, the certificates were revoked (the CA strips them) but the
// flag stayed set: the file was searched for "[new1.example]", which it
// does not list, and the device looked enrolled with no valid certificate.
func TestAdminRevokeByAnySpelling(t *testing.T) {
	for _, name := range []string{"new1.example", " new1.example ", "NEW1.Example", "new1.example.", "[new1.example]", "[NEW1.example.]"} {
		h, approve := approvingApp(t)
		ad := &adminAPI{app: h.app, log: zap.NewNop()}
		code, body := approve("new1.example")
		var issued RequestInfo
		if err := json.Unmarshal([]byte(body), &issued); code != 200 || err != nil || issued.Serial == "" {
			t.Fatalf("approve: %d %s", code, body)
		}
		if !h.app.cfg.device("new1.example").Enrolled {
			t.Fatal("new1.example not marked enrolled by its approval")
		}
		b, _ := json.Marshal(map[string]string{"device": name})
		if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", string(b)); code != 200 {
			t.Fatalf("revoke %q: %d %s", name, code, body)
		}
		rec, err := h.app.cas[profileModern].Lookup(context.Background(), issued.Serial)
		if err != nil || !rec.Revoked {
			t.Errorf("revoke %q: certificate %s not revoked (%v)", name, issued.Serial, err)
		}
		if h.app.cfg.device("new1.example").Enrolled {
			t.Errorf("revoke %q: new1.example still marked enrolled", name)
		}
	}
}
