package caddyenroll_test

// The soak through two Caddy processes sharing one storage and one
// configuration file ("two Caddy instances sharing a storage backend behave
// as one server"): every device request and administrator call goes to one
// of them at random, an administrator per instance decides at once, both
// reload, and once quiet the soak's checks run against each, and the
// instances must agree.

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"testing"
)

func TestSoakCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak through two real Caddy processes")
	}
	runSoak(t, max(2, soakInstances(t, 2)))
}

// checkAgree checks that every other instance says what instance 0 said in
// st once quiet: the devices (their enabled and enrolled flags as the file
// in force says, their certificates), the certificates' records, the
// requests and the pending list. They read one storage; what an instance
// keeps in memory is the file it loaded, which it re-reads every
// watch_interval (100ms here), so a disagreement is waited out for a
// while, not longer. The CRLs, which may lag by 30 s, are checkCRLs'.
func (k *soak) checkAgree(st *soakState) {
	for i := 1; i < len(k.insts); i++ {
		var diff string
		k.wait(fmt.Sprintf("instance %d to agree with instance 0", i), func() bool {
			diff = soakDisagreement(st, k.state(i))
			return diff == ""
		})
		if diff != "" {
			k.t.Errorf("instance %d disagrees with instance 0 once quiet:%s", i, diff)
		}
	}
}

// soakDisagreement describes where b differs from a ("" nowhere).
func soakDisagreement(a, b *soakState) string {
	var out string
	diff := func(what string, x, y map[string]any) {
		var keys []string
		for key := range maps.Keys(x) {
			keys = append(keys, key)
		}
		for key := range maps.Keys(y) {
			if _, ok := x[key]; !ok {
				keys = append(keys, key)
			}
		}
		sort.Strings(keys)
		for _, key := range keys {
			if !reflect.DeepEqual(x[key], y[key]) {
				out += fmt.Sprintf("\n\t%s %s: %+v, on the other %+v", what, key, x[key], y[key])
			}
		}
	}
	diff("device", anyMap(a.devices), anyMap(b.devices))
	diff("certificate", anyMap(a.certs), anyMap(b.certs))
	diff("request", requestsByID(a.requests), requestsByID(b.requests))
	diff("pending", requestsByID(a.pending), requestsByID(b.pending))
	return out
}

func anyMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func requestsByID(rs []soakRequest) map[string]any {
	out := make(map[string]any, len(rs))
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}
