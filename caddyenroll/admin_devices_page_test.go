package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// listCountingStorage counts the directory listings made of its storage (a
// device's certificates are the listing of its index).
type listCountingStorage struct {
	certmagic.Storage
	lists atomic.Int64
}

func (s *listCountingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, prefix, recursive)
}

// The device listing comes a page at a time in the order of the devices'
// names (configfile.DeviceKey), the Link header naming the next page as
// request lists do; a page reads the certificates of its devices only, so
// a page of a carrier's file costs what it shows, not the file.
func TestAdminDevicesPages(t *testing.T) {
	ctx := context.Background()
	cs, _, dir := testConfigState(t, "group \"\"\n"+
		"device c.example \"\" enabled\ndevice A.example \"\" enabled\ndevice e.example \"\" disabled\n"+
		"device b.example \"\" enabled enrolled\ndevice d.example \"\" enabled\n")
	st := &listCountingStorage{Storage: localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}}
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "b.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.Issue(ctx, csr, "b.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	a := &App{cfg: cs, storage: st, cas: map[string]*ca.CA{profileModern: c}, log: zap.NewNop(), bgCtx: ctx}
	ad := &adminAPI{app: a, log: zap.NewNop()}

	get := func(uri string) ([]DeviceInfo, string) {
		t.Helper()
		code, body, hdr := adminDo(t, ad, "GET", uri)
		var devs []DeviceInfo
		if err := json.Unmarshal([]byte(body), &devs); code != 200 || err != nil {
			t.Fatalf("GET %s: %d %v: %s", uri, code, err, body)
		}
		next, err := nextPage(hdr, uri)
		if err != nil {
			t.Fatal(err)
		}
		return devs, next
	}
	names := func(devs []DeviceInfo) []string {
		var out []string
		for _, d := range devs {
			out = append(out, d.Name)
		}
		return out
	}

	for _, tc := range []struct {
		uri   string
		want  []string
		next  string
		lists int64 // reads of device indexes (one CA)
	}{
		{"/enroll/devices", []string{"A.example", "b.example", "c.example", "d.example", "e.example"}, "", 5},
		{"/enroll/devices?limit=2", []string{"A.example", "b.example"}, "/enroll/devices?after=b.example&limit=2", 2},
		{"/enroll/devices?after=b.example&limit=2", []string{"c.example", "d.example"}, "/enroll/devices?after=d.example&limit=2", 2},
		{"/enroll/devices?after=d.example&limit=2", []string{"e.example"}, "", 1},
		// after spelled as the file may spell a name
		{"/enroll/devices?after=B.Example.&limit=1", []string{"c.example"}, "/enroll/devices?after=c.example&limit=1", 1},
		{"/enroll/devices?after=zz.example", nil, "", 0},
	} {
		before := st.lists.Load()
		devs, next := get(tc.uri)
		if !slices.Equal(names(devs), tc.want) || next != tc.next {
			t.Errorf("GET %s: %q next %q, want %q next %q", tc.uri, names(devs), next, tc.want, tc.next)
		}
		if n := st.lists.Load() - before; n != tc.lists {
			t.Errorf("GET %s: %d reads of device indexes, want %d", tc.uri, n, tc.lists)
		}
	}

	// the certificates are the page's devices' own
	devs, _ := get("/enroll/devices?after=a.example&limit=1")
	if len(devs) != 1 || len(devs[0].Certificates) != 1 || devs[0].Certificates[0].Serial != is.Serial || !devs[0].Enrolled {
		t.Errorf("b.example: %+v, want its certificate %s", devs, is.Serial)
	}
}

// `caddy enroll devices` reads every page of the device list and prints
// one table: the heading once.
func TestEnrollDevicesCommandPages(t *testing.T) {
	pages := map[string]string{
		"":          `[{"name": "a.example", "group": "", "enabled": true, "certificates": []}]`,
		"a.example": `[{"name": "b.example", "group": "", "enabled": true, "certificates": []}]`,
	}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		if after == "" {
			w.Header().Set("Link", `</enroll/devices?after=a.example&limit=1>; rel="next"`)
		}
		w.Write([]byte(pages[after]))
	}))
	defer fake.Close()
	out, _, err := runEnrollCommand(t, "devices", "--address", strings.TrimPrefix(fake.URL, "http://"))
	if err != nil || !strings.Contains(out, "a.example") || !strings.Contains(out, "b.example") || strings.Count(out, "DEVICE") != 1 {
		t.Fatalf("every page, one heading: %v\n%s", err, out)
	}
}
