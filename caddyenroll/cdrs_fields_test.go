package caddyenroll

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"go.uber.org/zap"
)

// capturedUsage is the UsageIndication test_app's ReportUsage sent
// (../../shared/examples/osp, copied to osp/testdata), parsed.
func capturedUsage(t *testing.T) *osp.UsageIndication {
	t.Helper()
	raw, err := os.ReadFile("../osp/testdata/usage-indication.xml")
	if err != nil {
		t.Fatal(err)
	}
	return parseUsage(t, raw)
}

func parseUsage(t *testing.T, raw []byte) *osp.UsageIndication {
	t.Helper()
	ind, err := osp.ParseUsageIndication(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ind
}

// exportCDRs returns the JSON export as generic objects (what a reader
// sees, absent fields absent) and the CSV export as rows of cells by
// column name.
func exportCDRs(t *testing.T, a *App) ([]map[string]any, []map[string]string) {
	t.Helper()
	ad := &adminAPI{app: a, log: zap.NewNop()}
	get := func(uri string) []byte {
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, httptest.NewRequest("GET", uri, nil)); err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
		return rec.Body.Bytes()
	}
	var list []map[string]any
	if err := json.Unmarshal(get("/enroll/cdrs"), &list); err != nil {
		t.Fatal(err)
	}
	raw := get("/enroll/cdrs?format=csv")
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll() // every row as many cells as the header
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if !reflect.DeepEqual(rows[0], cdrCSVHeader) {
		t.Fatalf("CSV header %q", rows[0])
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			m[name] = r[i]
		}
		out = append(out, m)
	}
	if len(out) != len(list) {
		t.Fatalf("%d CSV rows, %d JSON records:\n%s", len(out), len(list), raw)
	}
	return list, out
}

// splitCSVList undoes csvList (and csvText's apostrophe): the items of a
// term_causes or statistics cell.
func splitCSVList(cell string) []string {
	cell = strings.TrimPrefix(cell, "'")
	if cell == "" {
		return nil
	}
	var items []string
	var cur strings.Builder
	for i := 0; i < len(cell); i++ {
		switch {
		case cell[i] == '\\' && i+1 < len(cell):
			i++
			cur.WriteByte(cell[i])
		case cell[i] == ';':
			items = append(items, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(cell[i])
		}
	}
	return append(items, cur.String())
}

// The columns of earlier versions keep their places; the new ones follow.
var cdrCSVHeaderBefore = []string{"transaction_id", "role", "reporter", "call_id", "calling", "called", "destination",
	"duration_seconds", "start_time", "alert_time", "connect_time", "end_time", "post_dial_delay_seconds",
	"release_source", "term_causes", "protocol", "received", "role_state", "provider_post_dial_delay_seconds",
	"transaction_issued", "destination_device", "timestamp", "customer_id", "device_id", "setup_attempt",
	"total_setup_attempts", "group_id", "service_type", "statistics", "transaction_source"}

// What test_app's ReportUsage sends and an operator bills or checks with
// is in the record and both exports: the indication's timestamp, the
// customer and device ids the gateway is configured with, the conference
// id (<Group><GroupId>) and the packets lost (<Statistics>), which earlier
// versions dropped.
func TestCDRKeepsToolkitUsageFields(t *testing.T) {
	if !reflect.DeepEqual(cdrCSVHeader[:len(cdrCSVHeaderBefore)], cdrCSVHeaderBefore) {
		t.Fatalf("the columns of earlier versions moved: %q", cdrCSVHeader)
	}
	now := at("2026-11-25T03:04:45Z")
	a, _, _ := cdrTestApp(t, now)
	ind := capturedUsage(t)
	mustStore(t, a, cdrFromUsage(&ind.Usages[0], "gw1", now))
	list, rows := exportCDRs(t, a)
	if len(list) != 1 {
		t.Fatalf("%d records", len(list))
	}
	j, row := list[0], rows[0]
	wantStats := map[string]any{"LossSent.Packets": "1", "LossSent.Fraction": "2",
		"LossReceived.Packets": "100", "LossReceived.Fraction": "10"}
	for name, want := range map[string]any{
		"timestamp": "2026-11-25T03:04:41Z", "customer_id": "1000", "device_id": "1000",
		"group_id": "E4596A7B-2C27-11D9-816A-EA39F2B2CD06", "statistics": wantStats,
		"post_dial_delay_seconds": 1.01,
	} {
		if !reflect.DeepEqual(j[name], want) {
			t.Errorf("JSON %s: %#v, want %#v", name, j[name], want)
		}
	}
	for _, absent := range []string{"setup_attempt", "total_setup_attempts", "service_type", "provider_post_dial_delay_seconds"} {
		if v, ok := j[absent]; ok {
			t.Errorf("JSON %s: %#v, want it left out (not reported)", absent, v)
		}
	}
	for name, want := range map[string]string{
		"timestamp": "2026-11-25T03:04:41Z", "customer_id": "1000", "device_id": "1000",
		"group_id": "E4596A7B-2C27-11D9-816A-EA39F2B2CD06", "setup_attempt": "", "total_setup_attempts": "",
		"service_type": "", "post_dial_delay_seconds": "1.01", "provider_post_dial_delay_seconds": "",
		"statistics": "LossReceived.Fraction=10;LossReceived.Packets=100;LossSent.Fraction=2;LossSent.Packets=1",
	} {
		if row[name] != want {
			t.Errorf("CSV %s: %q, want %q", name, row[name], want)
		}
	}
}

// A post-dial delay of 0 that the device reported ("0.000") is 0 in the
// record and both exports; one it did not report is left out of the JSON
// and empty in the CSV. Records of earlier versions read as before.
func TestCDRPostDialDelayZeroIsReported(t *testing.T) {
	const amount = "<Amount>\n30.000</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n"
	detail := func(src, provider string) string {
		d := amount
		if provider != "" {
			d = "<PostDialDelay type=\"destination\">\n" + provider + "</PostDialDelay>\n" + d
		}
		if src != "" {
			d += "<PostDialDelay type=\"source\">\n" + src + "</PostDialDelay>\n"
		}
		return d
	}
	now := at("2026-11-25T03:04:45Z")
	for _, tc := range []struct {
		name, src, provider string
		json, providerJSON  any // nil: left out
		csv, providerCSV    string
	}{
		{"none reported", "", "", nil, nil, "", ""},
		{"both 0", "0.000", "0.000", 0.0, 0.0, "0", "0"},
		{"source 0 only", "0.000", "", 0.0, nil, "0", ""},
		{"provider 0 only", "", "0.000", nil, 0.0, "", "0"},
		{"both above 0", "1.010", "2.010", 1.01, 2.01, "1.01", "2.01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, _ := cdrTestApp(t, now)
			raw := capturedUsageWithDetail(t, detail(tc.src, tc.provider))
			mustStore(t, a, cdrFromUsage(&parseUsage(t, raw).Usages[0], "gw1", now))
			list, rows := exportCDRs(t, a)
			if got := list[0]["post_dial_delay_seconds"]; got != tc.json {
				t.Errorf("JSON post_dial_delay_seconds %#v, want %#v", got, tc.json)
			}
			if got := list[0]["provider_post_dial_delay_seconds"]; got != tc.providerJSON {
				t.Errorf("JSON provider_post_dial_delay_seconds %#v, want %#v", got, tc.providerJSON)
			}
			if rows[0]["post_dial_delay_seconds"] != tc.csv || rows[0]["provider_post_dial_delay_seconds"] != tc.providerCSV {
				t.Errorf("CSV delays %q and %q, want %q and %q", rows[0]["post_dial_delay_seconds"],
					rows[0]["provider_post_dial_delay_seconds"], tc.csv, tc.providerCSV)
			}
		})
	}
	// what earlier versions stored: a float without pointer, left out
	// when 0
	for _, tc := range []struct {
		stored string
		want   *float64
	}{
		{`{"transaction_id":7,"role":"source","reporter":"gw1","received":"2026-11-25T03:00:00Z"}`, nil},
		{`{"transaction_id":7,"role":"source","reporter":"gw1","post_dial_delay_seconds":1.01,"provider_post_dial_delay_seconds":2.01,"received":"2026-11-25T03:00:00Z"}`, ptrTo(1.01)},
	} {
		var c CDR
		if err := json.Unmarshal([]byte(tc.stored), &c); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.PostDialDelay, tc.want) {
			t.Errorf("%s: post dial delay %v, want %v", tc.stored, c.PostDialDelay, tc.want)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// capturedUsageWithDetail is the captured indication with detail as its
// <UsageDetail>'s content.
func capturedUsageWithDetail(t *testing.T, detail string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../osp/testdata/usage-indication.xml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, "<UsageDetail>\n"), strings.Index(s, "</UsageDetail>")
	return []byte(s[:i] + "<UsageDetail>\n" + detail + s[j:])
}

// Termination causes and statistics are device text in list cells: a
// description or value holding the list separator ";", a backslash, a
// comma, quotes or line breaks neither adds a CSV column or row nor forges
// an item, a type holding ":" cannot forge the cause code (billing reads
// the Q.850 code), and the JSON export keeps every item exactly.
func TestCDRListCellsExact(t *testing.T) {
	now := at("2026-11-25T03:04:45Z")
	a, _, _ := cdrTestApp(t, now)
	causes := []osp.TermCause{
		{Type: "q850", Code: 16, Description: "normal;sip:200:OK"},
		{Type: "sip", Code: 486, Description: "busy, \"here\"\r\nnext,row,=1+1\n\\;"},
		{Type: "h323:16:", Code: 41, Description: ":x"}, // reads as q850-ish code 16 if the type is not escaped
		{Type: "=x\\", Code: 1, Description: ""},
	}
	wantJSON := []any{"q850:16:normal;sip:200:OK", "sip:486:busy, \"here\"\r\nnext,row,=1+1\n\\;",
		`h323\:16\::41::x`, `=x\\:1:`}
	u := capturedUsage(t).Usages[0]
	u.TermCauses = causes
	u.Statistics = []osp.Element{{Name: "Statistics", Children: []osp.Element{
		{Name: "Note", Value: "a;b\\c,\"d\"\ne"},
		{Name: "Packets", Attrs: []osp.Attr{{Name: "dir", Value: "x;y=z"}}, Value: "1"},
	}}}
	mustStore(t, a, cdrFromUsage(&u, "gw1", now))
	list, rows := exportCDRs(t, a)
	if got := list[0]["term_causes"]; !reflect.DeepEqual(got, wantJSON) || len(wantJSON) != len(causes) {
		t.Errorf("JSON term_causes\n%q\nwant\n%q", got, wantJSON)
	}
	// (encoding/csv, as other readers, turns a CRLF inside a quoted
	// field into LF: the JSON export is the exact one)
	var items, wantCSV []any
	for _, it := range splitCSVList(rows[0]["term_causes"]) {
		items = append(items, it)
	}
	for _, it := range wantJSON {
		wantCSV = append(wantCSV, strings.ReplaceAll(it.(string), "\r\n", "\n"))
	}
	if !reflect.DeepEqual(items, wantCSV) {
		t.Errorf("CSV term_causes %q splits into\n%q\nwant\n%q", rows[0]["term_causes"], items, wantCSV)
	}
	// the type ends at the first ":" no backslash escapes
	got, _ := list[0]["term_causes"].([]any)
	for i, it := range got {
		s := it.(string)
		end := 0
		for end < len(s) && s[end] != ':' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		code := strings.SplitN(s[end+1:], ":", 2)[0]
		if want := causes[i].Code; code != strconv.Itoa(want) {
			t.Errorf("%q reads as code %s, want %d", s, code, want)
		}
	}
	wantStats := map[string]any{"Note": "a;b\\c,\"d\"\ne", "Packets[dir:x%3By%3Dz]": "1"}
	if got := list[0]["statistics"]; !reflect.DeepEqual(got, wantStats) {
		t.Errorf("JSON statistics %q, want %q", got, wantStats)
	}
	stats := map[string]any{}
	for _, it := range splitCSVList(rows[0]["statistics"]) {
		k, v, _ := strings.Cut(it, "=")
		stats[k] = v
	}
	if !reflect.DeepEqual(stats, wantStats) {
		t.Errorf("CSV statistics %q reads as %q, want %q", rows[0]["statistics"], stats, wantStats)
	}
	// a cell that would start with a formula character gets an
	// apostrophe first (csvText), the escaping of the type after it
	u.TermCauses = u.TermCauses[3:]
	u.CallID = []byte("another call")
	mustStore(t, a, cdrFromUsage(&u, "gw1", now.Add(time.Second)))
	_, rows = exportCDRs(t, a)
	if c, want := rows[1]["term_causes"], `'=x\\\\:1:`; c != want {
		t.Errorf("term_causes cell %q, want %q", c, want)
	}
}

// The OSP Toolkit retries a report two ways: its HTTP layer sends the same
// bytes again, and an application whose report failed
// (OSPC_REPORT_USAGE_FAIL allows ReportUsage again) builds it anew, with a
// new <Timestamp>, componentId and messageId. Neither is a record of its
// own: the record's name holds none of those, and the record keeps the
// first report's timestamp.
func TestCDRToolkitRetryIsDuplicate(t *testing.T) {
	now := at("2026-11-25T03:04:45Z")
	a, _, _ := cdrTestApp(t, now)
	first := capturedUsage(t)
	mustStore(t, a, cdrFromUsage(&first.Usages[0], "gw1", now))
	again := capturedUsage(t)
	again.MessageID, again.Usages[0].ComponentID = "12345675", "12345674"
	again.Usages[0].Timestamp = first.Usages[0].Timestamp.Add(30 * time.Second)
	for _, retry := range []*osp.UsageIndication{first, again} {
		ok, err := a.storeCDR(context.Background(), cdrFromUsage(&retry.Usages[0], "gw1", now.Add(time.Minute)))
		if err != nil || ok {
			t.Errorf("retry stored=%v (%v), want a duplicate", ok, err)
		}
	}
	list, _ := exportCDRs(t, a)
	if len(list) != 1 || list[0]["timestamp"] != "2026-11-25T03:04:41Z" {
		t.Errorf("records %v, want one with the first report's timestamp", list)
	}
}

// The README lists the CSV columns, in order.
func TestCDRCSVColumnsDocumented(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "Columns of the CSV: `")
	list, _, ok2 := strings.Cut(after, "`")
	if !ok || !ok2 {
		t.Fatal("README: no \"Columns of the CSV: `…`\"")
	}
	if got := strings.Fields(strings.ReplaceAll(list, ",", " ")); !reflect.DeepEqual(got, cdrCSVHeader) {
		t.Errorf("README lists the CSV columns\n%q\nthe export writes\n%q", got, cdrCSVHeader)
	}
}
