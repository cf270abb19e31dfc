package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// adminDo sends a request to the admin API in-process and returns the
// status, the body (or the error's message) and the headers.
func adminDo(t *testing.T, ad *adminAPI, method, uri string) (int, string, http.Header) {
	t.Helper()
	return adminDoBody(t, ad, method, uri, "")
}

// adminDoBody is adminDo with a request body.
func adminDoBody(t *testing.T, ad *adminAPI, method, uri, body string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	err := ad.serve(rec, httptest.NewRequest(method, uri, strings.NewReader(body)))
	var apiErr caddy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatus, apiErr.Err.Error(), rec.Header()
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	if rec.Code >= 400 { // answered by serve: {"error": "..."}
		var refused struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &refused); err != nil || refused.Error == "" {
			t.Fatalf("%s %s: %d answered with %q, not a JSON error", method, uri, rec.Code, rec.Body)
		}
		return rec.Code, refused.Error, rec.Header()
	}
	return rec.Code, rec.Body.String(), rec.Header()
}

// pageFixture stores n requests, every third pending, the others issued,
// and returns the admin API over them and their ids in order.
func pageFixture(t *testing.T, n int) (*adminAPI, *stateStore, []string) {
	t.Helper()
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	var ids []string
	for i := range n {
		state := stateIssued
		if i%3 == 0 {
			state = statePending
		}
		id := requestID(profileModern, fmt.Sprintf("gw%d.example", i), "key")
		r := &Request{ID: id, Device: fmt.Sprintf("gw%d.example", i), State: state, CSR: []byte("csr"),
			Certificate: []byte("certificate"), Created: time.Now().Add(time.Duration(-i) * time.Minute)}
		if err := s.putRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	initMetrics()
	return &adminAPI{app: &App{storage: st, state: s}, log: zap.NewNop()}, s, ids
}

// walk follows the Link rel="next" of a list from uri and returns the ids
// of every page, and the number of pages.
func walk(t *testing.T, ad *adminAPI, uri string) ([]string, int) {
	t.Helper()
	var got []string
	pages := 0
	for uri != "" {
		code, body, hdr := adminDo(t, ad, "GET", uri)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", uri, code, body)
		}
		pages++
		var list []RequestInfo
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("GET %s: %v\n%s", uri, err, body)
		}
		for _, r := range list {
			got = append(got, r.ID)
		}
		next, err := nextPage(hdr, uri)
		if err != nil {
			t.Fatal(err)
		}
		if next == "" && hdr.Get("Link") != "" {
			t.Fatalf("GET %s: a Link the command does not follow: %s", uri, hdr.Get("Link"))
		}
		uri = next
	}
	return got, pages
}

// Request lists come a page at a time in id order, the Link header naming
// the next page; walking the pages lists every request once.
func TestRequestListPages(t *testing.T) {
	ad, s, ids := pageFixture(t, 25)
	var pending []string
	for _, id := range ids {
		if r, _ := s.request(context.Background(), id); r.State == statePending {
			pending = append(pending, id)
		}
	}
	for _, c := range []struct {
		uri   string
		want  []string
		pages int
	}{
		{"/enroll/requests", ids, 1},
		{"/enroll/requests?limit=10", ids, 3},
		{"/enroll/requests?limit=5", ids, 5}, // the last page full: no empty page after it
		{"/enroll/requests?limit=7&after=" + ids[9], ids[10:], 3},
		{"/enroll/requests?after=" + strings.ToUpper(ids[24]), nil, 1},
		{"/enroll/requests?after=" + ids[3][:4], slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id <= ids[3][:4] }), 1},
		{"/enroll/requests?state=pending&limit=3", pending, 3},
		{"/enroll/pending?limit=4", pending, 3},
		{"/enroll/requests?state=issued&limit=4", slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(pending, id) }), 4},
	} {
		got, pages := walk(t, ad, c.uri)
		if !slices.Equal(got, c.want) || pages != c.pages {
			t.Errorf("%s: %d pages of %v\nwant %d of %v", c.uri, pages, got, c.pages, c.want)
		}
	}
	// the next page keeps the list's state and limit
	_, body, hdr := adminDo(t, ad, "GET", "/enroll/requests?state=issued&limit=2")
	var first []RequestInfo
	json.Unmarshal([]byte(body), &first)
	if want := fmt.Sprintf(`</enroll/requests?after=%s&limit=2&state=issued>; rel="next"`, first[len(first)-1].ID); hdr.Get("Link") != want {
		t.Errorf("Link %q, want %q", hdr.Get("Link"), want)
	}
	// a page shows no CSR or certificate, and the state keeps them
	page, _, err := s.requestPage(context.Background(), "", "", 3)
	if err != nil || len(page) != 3 || page[0].CSR != nil || page[0].Certificate != nil {
		t.Errorf("page %+v %v", page, err)
	}
	if r, _ := s.request(context.Background(), ids[0]); string(r.CSR) != "csr" {
		t.Errorf("stored request %+v", r)
	}
	for _, c := range []struct{ uri, want string }{
		{"/enroll/requests?limit=0", "limit must be a number from 1 to 10000"},
		{"/enroll/requests?limit=10001", "limit must be a number from 1 to 10000"},
		{"/enroll/pending?limit=ten", "limit must be a number"},
		{"/enroll/requests?after=xyz", "after must be a request id"},
		{"/enroll/requests?after=" + ids[0] + "0", "after must be a request id"},
	} {
		if code, body, _ := adminDo(t, ad, "GET", c.uri); code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", c.uri, code, body, c.want)
		}
	}
}

// A page of the pending list skips and, past the grace, drops markers
// whose request was decided; the pending gauge is set only from a whole
// list.
func TestPendingPageSkipsStaleMarkers(t *testing.T) {
	ad, s, ids := pageFixture(t, 9) // 3 pending
	ctx := context.Background()
	var pending []string
	for _, id := range ids {
		if r, _ := s.request(ctx, id); r.State == statePending {
			pending = append(pending, id)
		}
	}
	// decided, the marker left (a crash)
	r, _ := s.request(ctx, pending[0])
	r.State = stateRejected
	if err := s.storeJSON(ctx, requestKey(r.ID), r); err != nil {
		t.Fatal(err)
	}
	metrics.pending.Set(-1)
	if got, _ := walk(t, ad, "/enroll/pending?limit=1"); !slices.Equal(got, pending[1:]) {
		t.Errorf("pending pages %v, want %v", got, pending[1:])
	}
	if v := promtest.ToFloat64(metrics.pending); v != -1 {
		t.Errorf("pending gauge %v set from a page", v)
	}
	s.now = func() time.Time { return time.Now().Add(markerStaleAge + time.Second) }
	if got, _ := walk(t, ad, "/enroll/pending"); !slices.Equal(got, pending[1:]) {
		t.Errorf("pending %v, want %v", got, pending[1:])
	}
	if v := promtest.ToFloat64(metrics.pending); v != 2 {
		t.Errorf("pending gauge %v, want 2", v)
	}
	if n, _ := s.pendingMarkers(ctx); n != 2 {
		t.Errorf("%d markers left, want the stale one removed", n)
	}
}

// The commands read every page, or the one --limit asks for and say how
// to go on; a next page that does not follow is an error.
func TestListCommandPages(t *testing.T) {
	ad, _, ids := pageFixture(t, 7)
	var mu sync.Mutex
	var uris []string
	requested := func() []string {
		mu.Lock()
		defer mu.Unlock()
		u := uris
		uris = nil
		return u
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris = append(uris, r.URL.RequestURI())
		mu.Unlock()
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, r); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	out, _, err := runEnrollCommand(t, "requests", "--address", addr)
	if err != nil || strings.Count(out, "\n") != 8 || strings.Count(out, "ID ") != 1 {
		t.Fatalf("requests: %v\n%s", err, out)
	}

	requested()
	out, _, err = runEnrollCommand(t, "requests", "--state", "issued", "--after", ids[0], "--address", addr)
	if uris := requested(); err != nil || len(uris) != 1 || uris[0] != "/enroll/requests?after="+ids[0]+"&state=issued" {
		t.Fatalf("requests --after: %v %v\n%s", err, uris, out)
	}
	// one page, and how to go on
	out, errOut, err := runEnrollCommand(t, "pending", "--limit", "1", "--address", addr)
	if uris := requested(); err != nil || len(uris) != 1 || strings.Count(out, "\n") != 2 || !strings.Contains(errOut, "more requests follow: --after ") {
		t.Fatalf("pending --limit 1: %v %v\n%s%s", err, uris, out, errOut)
	}
	after := strings.TrimSpace(strings.TrimPrefix(errOut, "more requests follow: --after "))
	if !strings.Contains(out, after) {
		t.Errorf("--after %s is not the page's last id:\n%s", after, out)
	}

	// a server that names pages itself: every page is read
	pages := map[string]string{
		"":   `[{"id": "aa", "device": "one.example"}]`,
		"aa": `[{"id": "bb", "device": "two.example"}]`,
		"bb": `[{"id": "cc", "device": "three.example"}]`,
	}
	next := map[string]string{"": "aa", "aa": "bb"}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		if n, ok := next[after]; ok {
			w.Header().Add("Link", `</other>; rel="prev"`)
			w.Header().Add("Link", fmt.Sprintf(`</enroll/pending?%s>; rel="next"`, url.Values{"after": {n}}.Encode()))
		}
		w.Write([]byte(pages[after]))
	}))
	defer fake.Close()
	faddr := strings.TrimPrefix(fake.URL, "http://")
	out, _, err = runEnrollCommand(t, "pending", "--address", faddr)
	if err != nil || !strings.Contains(out, "one.example") || !strings.Contains(out, "two.example") || !strings.Contains(out, "three.example") ||
		strings.Count(out, "DEVICE") != 1 {
		t.Fatalf("every page: %v\n%s", err, out)
	}
	// a next page that goes back is refused
	hdr := http.Header{"Link": {`</enroll/pending?after=aa>; rel="next"`}}
	if _, err := nextPage(hdr, "/enroll/pending?after=bb"); err == nil {
		t.Error("a next page before the current one followed")
	}
	hdr = http.Header{"Link": {`</enroll/devices?after=cc>; rel="next"`}}
	if _, err := nextPage(hdr, "/enroll/pending?after=bb"); err == nil {
		t.Error("a next page of another list followed")
	}
}
