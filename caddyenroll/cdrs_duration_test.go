package caddyenroll

import (
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// A duration reported in seconds where the toolkit takes milliseconds
// (Asterisk's res_osp, FreeSWITCH's mod_osp on toolkits since 4.26) is
// recorded as the call's, with the reported value kept; one a gateway
// measured right, or one the times cannot vouch for, is recorded as
// reported.
func TestSecondsAsMilliseconds(t *testing.T) {
	connect := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		reported   time.Duration
		connect    time.Time
		span       time.Duration // end - connect
		corrected  bool
		recordedAs float64
	}{
		{"res_osp, a 30 s call", 30 * time.Millisecond, connect, 30 * time.Second, true, 30},
		{"res_osp, a 2 h call (the toolkit's float)", 7200*time.Millisecond + 300*time.Nanosecond, connect, 2 * time.Hour, true, 7200.0003},
		{"res_osp, a 2 s call, the shortest told", 2 * time.Millisecond, connect, 2 * time.Second, true, 2},
		{"res_osp, the times a second off the duration", 29 * time.Millisecond, connect, 30 * time.Second, true, 29},
		{"res_osp, a 2 h call 7 s off (within 0.1 %)", 7193 * time.Millisecond, connect, 2 * time.Hour, true, 7193},
		{"a 2 h call more than 0.1 % off", 7192 * time.Millisecond, connect, 2 * time.Hour, false, 7.192},
		{"a gateway that passes milliseconds", 30 * time.Second, connect, 30 * time.Second, false, 30},
		{"milliseconds, the times a second apart from the duration", 29500 * time.Millisecond, connect, 30 * time.Second, false, 29.5},
		{"a call under 2 s cannot tell", time.Millisecond, connect, time.Second, false, 0.001},
		{"no connect time", 30 * time.Millisecond, time.Time{}, 30 * time.Second, false, 0.03},
		{"nothing reported", 0, connect, 30 * time.Second, false, 0},
		{"a span the duration does not fit", 10 * time.Millisecond, connect, 30 * time.Second, false, 0.01},
		{"a huge duration does not overflow", 1 << 62, connect, 30 * time.Second, false, float64(1<<62) / 1e9},
		{"end before connect", 30 * time.Millisecond, connect, -30 * time.Second, false, 0.03},
	} {
		t.Run(c.name, func(t *testing.T) {
			end := time.Time{}
			if !c.connect.IsZero() {
				end = c.connect.Add(c.span)
			}
			if got := secondsAsMilliseconds(c.reported, c.connect, end); got != c.corrected {
				t.Fatalf("secondsAsMilliseconds = %v, want %v", got, c.corrected)
			}
			u := &osp.Usage{TransactionID: 1, Role: "source", Duration: c.reported, ConnectTime: c.connect, EndTime: end}
			cdr := cdrFromUsage(u, "gw1.example", connect)
			if cdr.Duration != c.recordedAs {
				t.Errorf("recorded %v s, want %v", cdr.Duration, c.recordedAs)
			}
			switch {
			case c.corrected && (cdr.ReportedDuration == nil || *cdr.ReportedDuration != c.reported.Seconds()):
				t.Errorf("reported_duration_seconds %v, want %v", cdr.ReportedDuration, c.reported.Seconds())
			case !c.corrected && cdr.ReportedDuration != nil:
				t.Errorf("reported_duration_seconds %v, want none", *cdr.ReportedDuration)
			}
		})
	}
}
