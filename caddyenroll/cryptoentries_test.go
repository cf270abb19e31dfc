package caddyenroll

import "testing"

// The ca package takes a crypto item's entries separated by commas or
// semicolons as well as spaces (ca.Open): read otherwise here, the legacy
// entry of "modern:…,legacy:…" went unseen, and Provision generated a new
// legacy CA in place of the one the file names.
func TestCryptoEntriesSeparators(t *testing.T) {
	const modern = "modern:p256:sha256:" + "3f1c000000000000000000000000000000000000000000000000000000000e07a"
	const legacy = "legacy:rsa2048:sha256:" + "aa00000000000000000000000000000000000000000000000000000000000bb"
	for _, item := range []string{
		modern + " " + legacy,
		modern + "," + legacy,
		modern + ", " + legacy,
		modern + ";" + legacy,
		modern + "\t" + legacy,
	} {
		e := cryptoEntries(item)
		if e[profileModern] != modern || e[profileLegacy] != legacy || len(e) != 2 {
			t.Errorf("cryptoEntries(%q) = %q", item, e)
		}
	}
	if e := cryptoEntries("keys"); len(e) != 0 {
		t.Errorf("cryptoEntries(keys) = %q", e)
	}
}
