package caddyenroll

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// CDR is one call detail record: a device's UsageIndication for one call
// leg, as stored (with `cdrs enabled`) under clearinghouse/cdrs/.
type CDR struct {
	TransactionID uint64    `json:"transaction_id"`
	Role          string    `json:"role"`
	Reporter      string    `json:"reporter"` // the device that reported it
	CallID        string    `json:"call_id"`  // base64
	Calling       string    `json:"calling"`
	Called        string    `json:"called"`
	Destination   string    `json:"destination,omitempty"` // signal address or device the call went to
	Duration      float64   `json:"duration_seconds"`
	StartTime     time.Time `json:"start_time,omitzero"`
	AlertTime     time.Time `json:"alert_time,omitzero"`
	ConnectTime   time.Time `json:"connect_time,omitzero"`
	EndTime       time.Time `json:"end_time,omitzero"`
	PostDialDelay float64   `json:"post_dial_delay_seconds,omitempty"`
	ReleaseSource string    `json:"release_source,omitempty"`
	TermCauses    []string  `json:"term_causes,omitempty"`
	Protocol      string    `json:"protocol,omitempty"`
	Received      time.Time `json:"received"`
}

// cdrKey names a record by transaction id, role and attempt: the OSP
// Toolkit reports every destination a source tried in one UsageIndication,
// each with the same transaction id and role (the failed first attempt,
// then the call that connected), told apart by call id and destination.
func cdrKey(c CDR) string {
	role := strings.ToLower(c.Role)
	if role == "" {
		role = "other"
	}
	attempt := sha256.Sum256([]byte(c.CallID + "\x00" + c.Destination))
	return path.Join("clearinghouse", "cdrs", strconv.FormatUint(c.TransactionID, 10)+"-"+role+"-"+hex.EncodeToString(attempt[:6])+".json")
}

func cdrFromUsage(u *osp.Usage, reporter string, now time.Time) CDR {
	c := CDR{
		TransactionID: u.TransactionID, Role: u.Role, Reporter: reporter,
		CallID:  base64.StdEncoding.EncodeToString(u.CallID),
		Calling: u.Calling().Value, Called: u.Called().Value,
		Duration: u.Duration.Seconds(), StartTime: u.StartTime, AlertTime: u.AlertTime,
		ConnectTime: u.ConnectTime, EndTime: u.EndTime, PostDialDelay: u.PostDialDelay.Seconds(),
		ReleaseSource: u.ReleaseSource, Protocol: u.Protocol.Value, Received: now.UTC(),
	}
	for _, in := range append(append([]osp.Info{}, u.DestinationAlternate...), u.DeviceInfo...) {
		if in.Value != "" && (in.Type == "transport" || in.Type == "network") {
			c.Destination = in.Value
			break
		}
	}
	for _, tc := range u.TermCauses {
		c.TermCauses = append(c.TermCauses, fmt.Sprintf("%s:%d:%s", tc.Type, tc.Code, tc.Description))
	}
	return c
}

// storeCDR stores a usage record unless one with the same transaction id,
// role, call id and destination exists (a device retrying its
// UsageIndication). Records are written atomically by the storage; the same
// key always gets the same content, so concurrent duplicates cannot disagree.
func (a *App) storeCDR(ctx context.Context, c CDR) (stored bool, err error) {
	key := cdrKey(c)
	if a.storage.Exists(ctx, key) {
		return false, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	return true, a.storage.Store(ctx, key, b)
}

// cdrs lists stored records, oldest first.
func (a *App) cdrs(ctx context.Context) ([]CDR, error) {
	keys, err := a.storage.List(ctx, path.Join("clearinghouse", "cdrs"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return []CDR{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]CDR, 0, len(keys))
	for _, k := range keys {
		var c CDR
		if ok, err := a.state.loadJSON(ctx, k, &c); err != nil || !ok {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Received.Equal(out[j].Received) {
			return out[i].Received.Before(out[j].Received)
		}
		return out[i].TransactionID < out[j].TransactionID
	})
	return out, nil
}

var cdrCSVHeader = []string{"transaction_id", "role", "reporter", "call_id", "calling", "called", "destination",
	"duration_seconds", "start_time", "alert_time", "connect_time", "end_time", "post_dial_delay_seconds",
	"release_source", "term_causes", "protocol", "received"}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// writeCDRsCSV writes records as CSV with a header line.
func writeCDRsCSV(w io.Writer, list []CDR) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cdrCSVHeader); err != nil {
		return err
	}
	for _, c := range list {
		rec := []string{strconv.FormatUint(c.TransactionID, 10), c.Role, c.Reporter, c.CallID, c.Calling, c.Called,
			c.Destination, strconv.FormatFloat(c.Duration, 'f', -1, 64), csvTime(c.StartTime), csvTime(c.AlertTime),
			csvTime(c.ConnectTime), csvTime(c.EndTime), strconv.FormatFloat(c.PostDialDelay, 'f', -1, 64),
			c.ReleaseSource, strings.Join(c.TermCauses, ";"), c.Protocol, csvTime(c.Received)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
