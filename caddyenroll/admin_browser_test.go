package caddyenroll

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// adminDoAs is adminDoBody with a Content-Type ("" sends none).
func adminDoAs(t *testing.T, ad *adminAPI, method, uri, contentType, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, uri, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	if err := ad.serve(rec, r); err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	return rec.Code, rec.Body.String()
}

// A request any web page can make to the admin endpoint without a CORS
// preflight — an HTML form's POST, whose body is form-encoded, multipart or
// text/plain — is refused (415) before anything is done. Caddy refuses
// such a request only when the browser says where it comes from (Origin,
// Sec-Fetch-Mode); a browser that sends neither on a form's POST could
// otherwise approve a request whose id the page's author got by enrolling
// a device of theirs, or, with a text/plain form whose field name and value
// make up a JSON object, revoke a device. A JSON body (which a page can only
// send after a preflight, which Caddy's origin check refuses) and a request
// without a Content-Type (curl -X POST, Go's clients) are taken as before.
func TestAdminRefusesBrowserFormBodies(t *testing.T) {
	initMetrics()
	h, _ := approvingApp(t)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	req := requestPending(t, h, "new1.example")
	approve, reject := "/enroll/approve/"+req.ID, "/enroll/reject/"+req.ID

	for _, c := range []struct {
		uri, contentType, body string
	}{
		{approve, "application/x-www-form-urlencoded", ""},
		{approve, "multipart/form-data; boundary=x", "--x--\r\n"},
		{approve, "text/plain", ""},
		{reject, "text/plain", `{"reason":"=spam"}` + "\r\n"},
		{reject, "application/x-www-form-urlencoded", "reason=spam"},
		{approve, "text/json", ""},
		{approve, "application/json-seq", ""},
		{approve, "not a media type;;", ""},
	} {
		code, body := adminDoAs(t, ad, "POST", c.uri, c.contentType, c.body)
		if code != 415 || !strings.Contains(body, "application/json") {
			t.Errorf("POST %s as %q: %d %s, want 415 asking for application/json", c.uri, c.contentType, code, body)
		}
	}
	if r, err := h.app.state.request(context.Background(), req.ID); err != nil || r == nil || r.State != statePending {
		state := "gone"
		if r != nil {
			state = r.State
		}
		t.Fatalf("after refused form posts, request %s is %s (%v), want it pending", req.ID, state, err)
	}

	code, body := adminDoAs(t, ad, "POST", approve, "application/json; charset=utf-8", "{}")
	if code != 200 || !strings.Contains(body, `"state": "issued"`) {
		t.Fatalf("approve with a JSON body: %d %s", code, body)
	}
	var issued RequestInfo
	if err := json.Unmarshal([]byte(body), &issued); err != nil || issued.Serial == "" {
		t.Fatalf("approve answer %s: %v", body, err)
	}

	// what <form enctype="text/plain"> with the field name {"serial":"
	// and the value ","serial":"SERIAL"} sends: a JSON object, with the
	// form's "=" in a value that the repeated field overrides
	trick := `{"serial":"=","serial":"` + issued.Serial + `"}` + "\r\n"
	if code, body := adminDoAs(t, ad, "POST", "/enroll/revoke", "text/plain", trick); code != 415 {
		t.Errorf("revoke by a text/plain form: %d %s, want 415", code, body)
	}
	rec, err := h.app.cas[profileModern].Lookup(context.Background(), issued.Serial)
	if err != nil || rec.Revoked {
		t.Fatalf("a refused form post revoked %s: %v", issued.Serial, err)
	}
	if code, body := adminDoAs(t, ad, "POST", "/enroll/revoke", "", `{"serial":"`+issued.Serial+`"}`); code != 200 {
		t.Fatalf("revoke without a Content-Type: %d %s", code, body)
	}
}
