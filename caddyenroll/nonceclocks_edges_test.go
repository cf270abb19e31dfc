package caddyenroll

import (
	"slices"
	"testing"
	"time"
)

// A step of the wall clock under two hours (a bucket and a fraction,
// with a retention of an hour) still counts the nonce clocks as two: a
// nonce bound before the step, and one bound after it, are refused to
// another binding by this instance and by another whose clock did not
// step (reading the previous and next bucket covers a difference of one
// bucket, not of two).
func TestNonceClockStepUnderTwoBuckets(t *testing.T) {
	const retention = time.Hour
	for _, c := range []struct {
		name  string
		start time.Duration // the wall clock at start, since nonceEpoch
		step  time.Duration
	}{
		{"forward 100m", 0, 100 * time.Minute},
		{"back 100m", 3 * time.Hour, -100 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newSteppedNonces(t, retention, nonceEpoch.Add(c.start))
			other, bind := f.other, f.bind
			f.at(50*time.Minute, 0)
			if !bind(f.s, "before", "A") {
				t.Fatal("a new nonce refused before the step")
			}
			f.at(55*time.Minute, c.step)
			if !bind(f.s, "after", "A") {
				t.Fatal("a new nonce refused after the step")
			}
			for _, nonce := range []string{"before", "after"} {
				if bind(f.s, nonce, "B") {
					t.Errorf("the nonce bound %s the step was taken again", nonce)
				}
				if bind(other, nonce, "B") {
					t.Errorf("the nonce bound %s the step was taken again by another instance", nonce)
				}
			}
		})
	}
}

// The buckets kept for an instance using a longer retention are judged by
// the later of its two clocks' readings at its janitor's last run: its
// wall clock stepped back, the earlier reading alone took it as gone, and
// this janitor deleted the buckets of its longer retention, whose nonces
// it must still refuse.
func TestNonceKeptBucketsByLaterReading(t *testing.T) {
	now := nonceEpoch.Add(90 * 24 * time.Hour)
	const long = 30 * 24 * time.Hour
	stepped := nonceSize{Seconds: int64(long / time.Second), Seen: now.Add(-10 * nonceJanitorInterval), Also: now.Add(-time.Minute)}
	want := nonceSize{Seconds: stepped.Seconds, Seen: stepped.Also}.keptBuckets(now, time.Hour)
	got := stepped.keptBuckets(now, time.Hour)
	for _, b := range want {
		if !slices.Contains(got, b) {
			t.Fatalf("kept %v; want at least %v, those of the later reading", got, want)
		}
	}
}
