package caddyenroll

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

var cdrCSVHeader = []string{"transaction_id", "role", "reporter", "call_id", "calling", "called", "destination",
	"duration_seconds", "start_time", "alert_time", "connect_time", "end_time", "post_dial_delay_seconds",
	"release_source", "term_causes", "protocol", "received", "role_state", "provider_post_dial_delay_seconds",
	"transaction_issued", "destination_device", "timestamp", "customer_id", "device_id", "setup_attempt",
	"total_setup_attempts", "group_id", "service_type", "statistics", "transaction_source",
	"routing_number", "cic", "npdi", "reported_duration_seconds", "details"}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// cdrCSV writes records as CSV (RFC 4180), a header line first. A field is
// quoted when it holds a comma, quote, line break, semicolon or tab (or
// vertical tab, form feed), or starts with a space: a spreadsheet that
// splits CSV on ";" (in locales whose decimal mark is a comma) or on tabs
// then keeps a device's text in its cell, so that a formula after such a
// separator inside it does not become a cell of its own.
type cdrCSV struct{ w *bufio.Writer }

func newCDRCSV(w io.Writer) (*cdrCSV, error) {
	c := &cdrCSV{w: bufio.NewWriter(w)}
	return c, c.row(cdrCSVHeader)
}

// row writes one line.
func (x *cdrCSV) row(fields []string) error {
	for i, f := range fields {
		if i > 0 {
			x.w.WriteByte(',')
		}
		if strings.ContainsAny(f, ",\";\t\v\f\r\n") || strings.HasPrefix(f, " ") {
			x.w.WriteByte('"')
			x.w.WriteString(strings.ReplaceAll(f, `"`, `""`))
			x.w.WriteByte('"')
		} else {
			x.w.WriteString(f)
		}
	}
	return x.w.WriteByte('\n') // bufio keeps the first error
}

// write writes one record. Text that devices report is written so that a
// spreadsheet shows it as text (csvText).
func (x *cdrCSV) write(c CDR) error {
	return x.row([]string{strconv.FormatUint(c.TransactionID, 10), csvText(c.Role), csvText(c.Reporter),
		csvText(c.CallID), csvText(c.Calling), csvText(c.Called), csvText(c.Destination),
		strconv.FormatFloat(c.Duration, 'f', -1, 64), csvTime(c.StartTime), csvTime(c.AlertTime),
		csvTime(c.ConnectTime), csvTime(c.EndTime), csvSeconds(c.PostDialDelay),
		csvText(c.ReleaseSource), csvText(csvList(c.TermCauses)), csvText(c.Protocol), csvTime(c.Received),
		csvText(c.RoleState), csvSeconds(c.ProviderPostDialDelay), csvBool(c.TransactionIssued),
		csvText(c.DestinationDevice), csvTime(c.Timestamp), csvText(c.CustomerID), csvText(c.DeviceID),
		csvInt(c.SetupAttempt), csvInt(c.TotalSetupAttempts), csvText(c.GroupID), csvText(c.ServiceType),
		csvText(csvPairs(c.Statistics)), csvText(c.TransactionSource),
		csvText(c.RoutingNumber), csvText(c.CIC), csvFlag(c.NPDI), csvSeconds(c.ReportedDuration),
		csvText(csvPairs(c.Details))})
}

// csvFlag is "true" for a flag the device reported, empty otherwise (as
// the JSON export leaves it out).
func csvFlag(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// csvSeconds is a delay the report may leave out: empty for none (nil),
// as the JSON export leaves the field out; a reported 0 is "0".
func csvSeconds(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// csvInt is a count, or empty when not reported.
func csvInt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

// csvItem escapes one item of a list cell: "\" and ";" are written "\\"
// and "\;".
var csvItem = strings.NewReplacer(`\`, `\\`, ";", `\;`)

// csvList joins items with ";" in one cell (term_causes), each escaped
// (csvItem), so that an item holding a ";" stays one item: split the cell
// at the semicolons that no backslash escapes, then undo "\;" and "\\".
func csvList(items []string) string {
	esc := make([]string, len(items))
	for i, it := range items {
		esc[i] = csvItem.Replace(it)
	}
	return strings.Join(esc, ";")
}

// csvPairs writes name=value pairs (statistics, details) as csvList does, sorted
// by name. Names (osp.Element.Flatten's) hold no "=", ";" or "\": the
// first "=" of an item ends its name.
func csvPairs(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	items := make([]string, len(names))
	for i, k := range names {
		items[i] = k + "=" + m[k]
	}
	return csvList(items)
}

// csvBool is true, false, or empty for a record that does not tell.
func csvBool(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func (x *cdrCSV) flush() error { return x.w.Flush() }

// csvText keeps a spreadsheet from running a field as a formula (CSV
// injection): a field that starts with = + - @, a tab or a carriage return
// gets a leading apostrophe, as OWASP advises, and so does one that starts
// with an apostrophe, so that removing one leading apostrophe always gives
// the value back. Numbers reported with a leading + read '+1404….
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r'", rune(v[0])) {
		return "'" + v
	}
	return v
}
