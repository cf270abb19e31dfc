package caddyenroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

func (ad *adminAPI) cdrs(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
		return ad.exportCDRs(w, r)
	case http.MethodDelete:
		return ad.purgeCDRs(w, r)
	}
	return notAllowed(w, r, http.MethodGet, http.MethodDelete)
}

// cdrRangeQuery reads the optional since and until days of an export.
func cdrRangeQuery(q url.Values) (dayRange, error) {
	var rg dayRange
	for _, p := range []struct {
		name string
		day  *time.Time
	}{{"since", &rg.since}, {"until", &rg.until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		d, err := parseDay(v)
		if err != nil {
			return dayRange{}, fmt.Errorf("%s: %v", p.name, err)
		}
		if d.IsZero() { // the open bound: until=0001-01-01 would export every record
			return dayRange{}, fmt.Errorf("%s: %q is too early (the earliest day is 0001-01-02)", p.name, v)
		}
		*p.day = d
	}
	if !rg.since.IsZero() && !rg.until.IsZero() && rg.since.After(rg.until) {
		return dayRange{}, fmt.Errorf("since %s is after until %s", q.Get("since"), q.Get("until"))
	}
	return rg, nil
}

// cdrPurgeQuery reads the required before day of a purge. A day later than
// tomorrow (UTC) is refused: it would delete records of days not over yet,
// today's or later, which a typo must not do. Today is refused in the first
// cdrMidnightWindow after midnight: a record received just before it may
// still be being written (or its retry deduplicated against it), and an
// export made at midnight would not hold it (tomorrow, which deletes
// today's records too, is meant as such).
func cdrPurgeQuery(q url.Values, now time.Time) (time.Time, error) {
	v := q.Get("before")
	if v == "" {
		return time.Time{}, errors.New("before is required: records of the UTC days before it (YYYY-MM-DD) are deleted")
	}
	before, err := parseDay(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("before: %v", err)
	}
	if tomorrow := utcDay(now).AddDate(0, 0, 1); before.After(tomorrow) {
		return time.Time{}, fmt.Errorf("before %s is later than tomorrow (%s UTC): refusing a purge that reaches past today",
			v, tomorrow.Format(cdrDayLayout))
	}
	if today := utcDay(now); before.Equal(today) && now.Sub(today) < cdrMidnightWindow {
		return time.Time{}, fmt.Errorf("before %s: yesterday's records may still be arriving until %s UTC; purge then (export first)",
			v, today.Add(cdrMidnightWindow).Format("15:04"))
	}
	return before, nil
}

func (ad *adminAPI) exportCDRs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return apiErr(http.StatusBadRequest, fmt.Errorf("format must be json or csv, not %q", format))
	}
	rg, err := cdrRangeQuery(q)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	// streamed, a day at a time: a failure after the first bytes can only
	// cut the answer short (and is logged)
	out := &countingWriter{w: w}
	var write func(CDR) error
	var finish func() error
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		cw, err := newCDRCSV(out)
		if err != nil {
			return err
		}
		write, finish = cw.write, cw.flush
	} else {
		w.Header().Set("Content-Type", "application/json")
		n := 0
		write = func(c CDR) error {
			b, err := json.MarshalIndent(cdrExport{strconv.FormatUint(c.TransactionID, 10), c}, "  ", "  ")
			if err != nil {
				return err
			}
			sep := ",\n  "
			if n == 0 {
				sep = "[\n  "
			}
			n++
			_, err = out.Write(append([]byte(sep), b...))
			return err
		}
		finish = func() error {
			end := "\n]\n"
			if n == 0 {
				end = "[]\n"
			}
			_, err := io.WriteString(out, end)
			return err
		}
	}
	err = ad.app.eachCDR(r.Context(), rg, write)
	if err == nil {
		err = finish()
	}
	if err != nil && out.n == 0 {
		return apiErr(http.StatusInternalServerError, err)
	}
	if err != nil {
		// the status is sent: break the connection, so that no client
		// (nor caddy enroll cdrs) takes a cut export for a whole one
		ad.log.Error("exporting call detail records: answer cut short", zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (ad *adminAPI) purgeCDRs(w http.ResponseWriter, r *http.Request) error {
	// it takes no body: one with fields is a mistake, refused before
	// anything is deleted, as on the other routes
	if err := readBody(r, &struct{}{}); err != nil {
		return err
	}
	before, err := cdrPurgeQuery(r.URL.Query(), ad.app.state.now())
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	res, err := ad.app.purgeCDRs(r.Context(), before)
	fields := []zap.Field{zap.String("before", before.Format(cdrDayLayout)), zap.Strings("days", res.DeletedDays),
		zap.Int("days_deleted", len(res.DeletedDays)), zap.Int("legacy_records_deleted", res.DeletedLegacyRecords)}
	if err != nil {
		ad.log.Error("purging call detail records", append(fields, zap.Error(err))...)
		return apiErr(http.StatusInternalServerError, err)
	}
	ad.log.Info("call detail records purged", fields...)
	return writeJSON(w, res)
}
