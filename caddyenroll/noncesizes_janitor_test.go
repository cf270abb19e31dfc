package caddyenroll

import (
	"slices"
	"testing"
	"time"
)

// A janitor of a short retention keeps the buckets of an instance with a
// longer one by that instance's retention only while it may still use it
// (its janitor ran less than two runs ago): once it stopped, by its own,
// else the other size's buckets stayed up to the longer retention after
// every instance of it was gone.
func TestNonceKeptBucketsLongerRetentionStopped(t *testing.T) {
	size := int64(720 * 3600)
	seen := time.Unix(100*size+size/2, 0)
	o := nonceSize{Seconds: size, Seen: seen}
	for _, c := range []struct {
		name  string
		since time.Duration // of seen
		want  []int64
	}{
		{"in use", time.Hour, []int64{99, 100}},
		{"stopped", 2*nonceJanitorInterval + 2*time.Hour, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := o.keptBuckets(seen.Add(c.since), time.Hour); !slices.Equal(got, c.want) {
				t.Errorf("kept %v, want %v", got, c.want)
			}
		})
	}
}
