package caddyenroll

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// adminCall is a request a fake admin API received.
type adminCall struct {
	method, uri, contentType, body string
}

// fakeAdminRoutes serves answers by path, as the admin API would, and
// records the requests. Like the admin API, it refuses (415) a body of a
// type other than application/json.
func fakeAdminRoutes(t *testing.T, answers map[string]string) (string, func() []adminCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []adminCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, adminCall{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			w.Write([]byte(`{"error": "Content-Type must be application/json"}`))
			return
		}
		answer, ok := answers[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "not found"}`))
			return
		}
		w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() []adminCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]adminCall(nil), calls...)
	}
}

// oneJSONDocument decodes out, which must be one JSON document and nothing
// else (but its final newline).
func oneJSONDocument(t *testing.T, what, out string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: stdout is not JSON (%v):\n%s", what, err, out)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: stdout holds more than one JSON document:\n%s", what, out)
	}
	if !strings.HasSuffix(out, "}\n") && !strings.HasSuffix(out, "]\n") {
		t.Errorf("%s: stdout does not end in a newline after the document:\n%q", what, out)
	}
	return v
}

const (
	// the first request has no username nor client address: the empty
	// USER and CLIENT columns that shift awk's fields in the table
	jsonRequests = `[
  {"id": "3f9c1a2b00000000000000000000000a", "profile": "modern", "device": "gw1.example", "known_device": true, "public_key_sha256": "ab", "state": "pending", "created": "2025-01-02T03:04:05Z", "updated": "2025-01-02T03:04:05Z"},
  {"id": "3f9c1a2b00000000000000000000000b", "profile": "legacy", "device": "gw2.example", "known_device": false, "username": "alice", "client_addr": "192.0.2.7", "public_key_sha256": "cd", "state": "pending", "created": "2025-01-02T03:04:06Z", "updated": "2025-01-02T03:04:06Z"}
]`
	jsonDevices = `[
  {"name": "gw1.example", "group": "", "enabled": true, "enrolled": true, "certificates": [{"profile": "modern", "serial": "1f", "sha256": "ef", "not_before": "2025-01-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z", "revoked": false}]},
  {"name": "gw2.example", "group": "ACME ITSP", "enabled": false, "enrolled": false, "certificates": []}
]`
	jsonCertificate = `{"device": "gw1.example", "profile": "modern", "serial": "1f", "sha256": "ef", "not_before": "2025-01-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z", "revoked": false, "certificate_pem": "-----BEGIN CERTIFICATE-----\n", "text": "Certificate:\n    Data:\n"}`
	jsonCA          = `{"profile": "legacy", "crypto": "x", "subject": "CN=CA", "sha256_fingerprint": "AA:BB", "md5_fingerprint": "0a0b", "not_after": "2030-01-01", "certificate_pem": "-----BEGIN CERTIFICATE-----\n", "text": "Certificate:\n"}`
	jsonApproved    = `{"id": "3f9c1a2b00000000000000000000000b", "profile": "legacy", "device": "gw2.example", "known_device": false, "public_key_sha256": "cd", "state": "issued", "serial": "20", "created": "2025-01-02T03:04:06Z", "updated": "2025-01-02T03:05:00Z", "note": "the configuration file x does not parse: gw2.example will be added to it once it does"}`
	jsonRejected    = `{"id": "3f9c1a2b00000000000000000000000a", "profile": "modern", "device": "gw1.example", "known_device": true, "public_key_sha256": "ab", "state": "rejected", "reason": "not ours", "created": "2025-01-02T03:04:05Z", "updated": "2025-01-02T03:05:00Z"}`
	jsonRevoked     = `{"revoked": ["1f", "20"], "ids_forgotten": true}`
	jsonUnlocked    = `{"account_had_failures": true, "address_had_failures": false}`
	jsonPurged      = `{"deleted_days": ["2025-01-01", "2025-01-02"], "deleted_legacy_records": 3}`
)

// With --json, every subcommand that prints a list or a record prints the
// admin API's answer as one JSON document on stdout, holding every record
// as the API gave it (an empty username is no shifted column); without
// it, the table or readable form is printed as before. Request bodies are
// sent as application/json (the admin API refuses another type, 415).
func TestAdminCommandJSONFlag(t *testing.T) {
	addr, calls := fakeAdminRoutes(t, map[string]string{
		"/enroll/pending":                                 jsonRequests,
		"/enroll/requests":                                jsonRequests,
		"/enroll/devices":                                 jsonDevices,
		"/enroll/certificates/1f":                         jsonCertificate,
		"/enroll/ca/legacy":                               jsonCA,
		"/enroll/approve/3f9c1a2b":                        jsonApproved,
		"/enroll/reject/3f9c1a2b00000000000000000000000a": jsonRejected,
		"/enroll/revoke":                                  jsonRevoked,
		"/enroll/unlock":                                  jsonUnlocked,
		"/enroll/cdrs":                                    jsonPurged,
	})
	for _, c := range []struct {
		args   string
		answer string // what stdout must hold, as JSON
		table  string // the default output's beginning
		body   string // the request body sent, if any
	}{
		{"pending", jsonRequests, "ID  ", ""},
		{"requests --state pending", jsonRequests, "ID  ", ""},
		{"devices", jsonDevices, "DEVICE  ", ""},
		{"certificate 1f", jsonCertificate, "device:  gw1.example", ""},
		{"ca --profile legacy", jsonCA, "profile:     legacy", ""},
		{"approve 3f9c1a2b --group ACME", jsonApproved, "{", `{"group":"ACME"}`},
		{"reject 3f9c1a2b00000000000000000000000a --reason x", jsonRejected, "{", `{"reason":"x"}`},
		{"revoke --device gw1.example --forget-ids", jsonRevoked, "{", `{"device":"gw1.example","reason":0,"forget_ids":true}`},
		{"cdrs purge --before 2025-01-03", jsonPurged, "{", ""},
		{"unlock --username ops --client-address 2001:db8::1", jsonUnlocked, "account: failed logins cleared\naddress: no failed logins to clear\n", `{"username":"ops","address":"2001:db8::1"}`},
	} {
		args := append(strings.Fields(c.args), "--address", addr)
		var want any
		if err := json.Unmarshal([]byte(c.answer), &want); err != nil {
			t.Fatal(err)
		}

		before := len(calls())
		out, errOut, err := runEnrollCommand(t, append(args, "--json")...)
		if err != nil {
			t.Errorf("%s --json: %v\n%s", c.args, err, errOut)
			continue
		}
		if got := oneJSONDocument(t, c.args+" --json", out); !reflect.DeepEqual(got, want) {
			t.Errorf("%s --json printed\n%s\nwant the answer\n%s", c.args, out, c.answer)
		}
		if !strings.Contains(out, "\n  ") {
			t.Errorf("%s --json: not indented:\n%s", c.args, out)
		}
		for _, call := range calls()[before:] {
			if call.body == "" {
				continue
			}
			if call.contentType != "application/json" {
				t.Errorf("%s: %s %s sent a body as %q, want application/json", c.args, call.method, call.uri, call.contentType)
			}
			if !jsonEqual(call.body, c.body) {
				t.Errorf("%s: sent %s, want %s", c.args, call.body, c.body)
			}
		}

		// the default is unchanged: the table or readable form
		out, _, err = runEnrollCommand(t, args...)
		if err != nil || !strings.HasPrefix(out, c.table) {
			t.Errorf("%s: %v, printed\n%s\nwant it to begin with %q", c.args, err, out, c.table)
		}
	}

	// an error still fails the command, printing nothing on stdout
	out, _, err := runEnrollCommand(t, "certificate", "2a", "--json", "--address", addr)
	if err == nil || !strings.Contains(err.Error(), "404") || out != "" {
		t.Errorf("certificate of an unknown serial --json: %v, printed %q; want the 404, nothing printed", err, out)
	}
}

// jsonEqual says whether a and b are the same JSON value.
func jsonEqual(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}

// A list read a page at a time is one JSON array of every page's records
// with --json, printed only once every page was read: a failing page
// prints nothing (a part of the list must not pass for all of it). With
// --limit, the one page, and the --after that continues on stderr.
func TestAdminCommandJSONPages(t *testing.T) {
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("after") {
		case "":
			w.Header().Set("Link", `</enroll/requests?after=3f9c1a2b00000000000000000000000a&limit=1>; rel="next"`)
			w.Write([]byte(`[{"id": "3f9c1a2b00000000000000000000000a", "device": "gw1.example", "state": "pending"}]`))
		case "3f9c1a2b00000000000000000000000a":
			if fail {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"error": "storage"}`))
				return
			}
			w.Write([]byte(`[{"id": "3f9c1a2b00000000000000000000000b", "device": "gw2.example", "state": "issued"}]`))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	out, _, err := runEnrollCommand(t, "requests", "--json", "--address", addr)
	if err != nil {
		t.Fatal(err)
	}
	var all []RequestInfo
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 2 || all[0].Device != "gw1.example" || all[1].Device != "gw2.example" {
		t.Errorf("requests --json over two pages: %v %+v\n%s", err, all, out)
	}
	oneJSONDocument(t, "requests --json", out)

	out, errOut, err := runEnrollCommand(t, "requests", "--json", "--limit", "1", "--address", addr)
	var page []RequestInfo
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page) != 1 || !strings.Contains(errOut, "--after 3f9c1a2b00000000000000000000000a") {
		t.Errorf("requests --json --limit 1: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	fail = true
	out, _, err = runEnrollCommand(t, "requests", "--json", "--address", addr)
	if err == nil || out != "" {
		t.Errorf("requests --json with a failing second page: %v, printed %q; want an error and nothing printed", err, out)
	}
}

// Every subcommand that talks to the admin API takes --json, but the CDR
// export, whose format is --format: a new one must not be forgotten.
func TestAdminCommandsHaveJSONFlag(t *testing.T) {
	root := &cobra.Command{Use: "enroll"}
	caddycmd.Commands()["enroll"].CobraFunc(root)
	var walk func(cmds []*cobra.Command)
	n := 0
	walk = func(cmds []*cobra.Command) {
		for _, c := range cmds {
			walk(c.Commands())
			has := c.Flags().Lookup("json") != nil
			switch name := c.CommandPath(); name {
			case "enroll check", "enroll cdrs":
				if has {
					t.Errorf("%s has --json", name)
				}
			default:
				n++
				if !has {
					t.Errorf("%s lacks --json", name)
				}
			}
		}
	}
	walk(root.Commands())
	if n != 10 {
		t.Errorf("%d subcommands with --json, want 10", n)
	}
	if !strings.Contains(caddycmd.Commands()["enroll"].Long, "--json") {
		t.Error("caddy help enroll does not mention --json")
	}
}
