package routing

import (
	"strconv"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// keyString decodes a key back to its digits.
func keyString(k key) string {
	const chars = "?0123456789*#"
	var b strings.Builder
	for i := 0; i < maxDigits; i++ {
		w, sh := k.hi, 60-4*uint(i)
		if i >= 16 {
			w, sh = k.lo, 60-4*uint(i-16)
		}
		c := w >> sh & 15
		if c == 0 {
			break
		}
		b.WriteByte(chars[c])
	}
	return b.String()
}

func TestKeys(t *testing.T) {
	for _, s := range []string{"", "0", "1", "#", "*", "0123456789*#", "1234567890123456", "12345678901234567", strings.Repeat("#", 32), strings.Repeat("0", 32)} {
		k, ok := patternKey(s)
		if !ok || keyString(k) != s || keyLen(k.hi, k.lo) != len(s) {
			t.Errorf("patternKey(%q) = %x %v: %q len %d", s, k, ok, keyString(k), keyLen(k.hi, k.lo))
		}
	}
	for _, s := range []string{"a", "+1", "1 2", strings.Repeat("1", 33)} {
		if _, ok := patternKey(s); ok {
			t.Errorf("patternKey(%q) accepted", s)
		}
	}
	// order of keys = order of strings; isPrefix and commonLen
	strs := []string{"", "0", "00", "01", "1", "10", "1#", "1*", "9", "*", "#", "1234567890123456", "12345678901234560", "12345678901234567", "123456789012345678", strings.Repeat("#", 32)}
	code := func(s string) string { // the key order: digits, then '*', then '#'
		return strings.NewReplacer("*", ":", "#", ";").Replace(s)
	}
	for _, a := range strs {
		for _, b := range strs {
			ka, _ := patternKey(a)
			kb, _ := patternKey(b)
			if ka.less(kb) != (code(a) < code(b)) {
				t.Errorf("less(%q, %q) = %v", a, b, ka.less(kb))
			}
			// a's intervals: as a prefix, the numbers starting with a; as
			// an exact number, a alone
			for _, exact := range []bool{false, true} {
				if exact && a == "" {
					continue
				}
				it := item{k: ka, exact: exact}
				end, hasEnd := it.end()
				in := !kb.less(ka) && (!hasEnd || kb.less(end))
				want := strings.HasPrefix(b, a)
				if exact {
					want = a == b
				}
				if in != want {
					t.Errorf("%q in interval of %q (exact %v) = %v", b, a, exact, in)
				}
			}
		}
	}
}

// TestIndexAgainstReference builds tables of random routes over a small
// alphabet (so that prefixes nest deeply), with keys on both sides of 16
// digits and groups large enough to use the bucket tables, and compares
// Lookup with the plain rule on random numbers.
func TestIndexAgainstReference(t *testing.T) {
	for _, tc := range []struct {
		alphabet      string
		groups, count int
		minLen        int
		maxLen        int
	}{
		{"12", 3, 60, 0, 6},
		{"01#", 4, 3000, 0, 10},
		{"0123456789*#", 3, 20000, 0, 8},
		{"0123456789", 2, 20000, 4, 9},  // sparse: buckets start after most numbers
		{"0123456789", 1, 300000, 3, 7}, // one group, five-digit buckets
		{"19", 2, 400, 0, 24},
		{"0123456789", 2, 5000, 0, 32},
		{"0123456789", 2, 5000, 14, 20}, // around the word boundary
	} {
		rnd := newRand(uint64(tc.count))
		f := &configfile.File{}
		for g := 0; g < tc.groups; g++ {
			name := ""
			if g > 0 {
				name = "g" + strconv.Itoa(g)
			}
			f.Groups = append(f.Groups, configfile.Group{Name: name})
			f.Devices = append(f.Devices, configfile.Device{Name: "d" + strconv.Itoa(g), Group: name, Enabled: true, Enrolled: true})
		}
		randDigits := func(n int) string {
			b := make([]byte, n)
			for i := range b {
				b[i] = tc.alphabet[rnd.IntN(len(tc.alphabet))]
			}
			return string(b)
		}
		type rk struct {
			g, p  string
			exact bool
		}
		seen := map[rk]bool{}
		for i := 0; i < tc.count; i++ {
			g := f.Groups[rnd.IntN(tc.groups)].Name
			p := randDigits(tc.minLen + rnd.IntN(tc.maxLen-tc.minLen+1))
			exact := p != "" && rnd.IntN(4) == 0
			if seen[rk{g, p, exact}] {
				continue
			}
			seen[rk{g, p, exact}] = true
			num := p + "..."
			if exact {
				num = p
			}
			f.Routes = append(f.Routes, configfile.Route{Group: g, Number: num, Prefix: p, Exact: exact,
				Targets: []configfile.Target{{Device: int32(rnd.IntN(tc.groups)), Weight: 1}}, Line: len(f.Routes) + 1})
		}
		tab := build(t, f, Options{})
		ref := newRef(f)
		for i := 0; i < 20000; i++ {
			g := f.Groups[rnd.IntN(tc.groups)].Name
			var num string
			if r := &f.Routes[rnd.IntN(len(f.Routes))]; rnd.IntN(2) == 0 {
				num = r.Prefix + randDigits(rnd.IntN(4)) // near a key
			} else {
				num = randDigits(rnd.IntN(tc.maxLen + 3))
			}
			if num == "" || len(num) > maxDigits {
				continue
			}
			want, fb := ref.match(g, num)
			got, ok := tab.Lookup(g, num)
			switch {
			case want < 0 && ok:
				t.Fatalf("%q %q: Lookup = %+v, reference none", g, num, got)
			case want < 0:
			case !ok:
				t.Fatalf("%q %q: Lookup none, reference %+v", g, num, f.Routes[want])
			case got.Line != f.Routes[want].Line || got.Fallback != fb || got.Exact != f.Routes[want].Exact ||
				got.Pattern != f.Routes[want].Number || got.Group != f.Routes[want].Group:
				t.Fatalf("%q %q: Lookup = %+v, reference %+v (fallback %v)", g, num, got, f.Routes[want], fb)
			}
		}
	}
}

func TestDialedKeyMatchesConfigfile(t *testing.T) {
	for _, s := range []string{
		"1678", "+1678", "+1 404-872.4799", " +1", "+ 1", "1.2", "1..2", "1...", "...", "", ".", "+", "++1", "1+",
		"1+2", "*72#", "#", "1\t2", "1_2", "１", "-1-", strings.Repeat("9", 32), strings.Repeat("9", 33),
		strings.Repeat("1 ", 40), "1....", "1. .2", "1.-.2", "1. .", "1. ...", "1.2.3", "1. 2 .3", ". 1", "1 .",
		// the bytes either side of '0'-'9' (the fast path of plain digits
		// subtracts '0'), and its bound of 16
		"1:", "14:5", ":", "1/", "/1", strings.Repeat("9", 16), strings.Repeat("9", 15) + ":",
	} {
		checkDialed(t, s)
	}
}

func checkDialed(t testing.TB, s string) {
	t.Helper()
	k, ok := dialedKey(s)
	want, exact, err := configfile.NormalizeNumber(s)
	if wantOK := err == nil && exact; ok != wantOK {
		t.Fatalf("dialedKey(%q) ok = %v; NormalizeNumber = %q exact %v err %v", s, ok, want, exact, err)
	}
	if ok && keyString(k) != want {
		t.Fatalf("dialedKey(%q) = %q, NormalizeNumber %q", s, keyString(k), want)
	}
}

// TestIndexSkewed: most keys share their first eight digits, so that one
// bucket holds tens of thousands of entries (binary search before the
// count, and bucket starts too far apart for 16 bits).
func TestIndexSkewed(t *testing.T) {
	rnd := newRand(99)
	f := &configfile.File{
		Groups:  []configfile.Group{{Name: ""}},
		Devices: []configfile.Device{{Name: "d", Group: "", Enabled: true, Enrolled: true}},
	}
	seen := map[string]bool{}
	add := func(p string, exact bool) {
		if seen[p+strconv.FormatBool(exact)] || (exact && p == "") {
			return
		}
		seen[p+strconv.FormatBool(exact)] = true
		num := p + "..."
		if exact {
			num = p
		}
		f.Routes = append(f.Routes, configfile.Route{Group: "", Number: num, Prefix: p, Exact: exact,
			Targets: []configfile.Target{{Device: 0, Weight: 1}}, Line: len(f.Routes) + 1})
	}
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rnd.IntN(10))
		}
		return string(b)
	}
	for range 150000 {
		add("12345678"+digits(1+rnd.IntN(6)), rnd.IntN(5) == 0)
	}
	for _, p := range []string{"", "9", "5", "12", "1234", "12345678", "#", "*1"} {
		add(p, false)
	}
	tab := build(t, f, Options{})
	x := &tab.groups[0].idx
	if x.wide == nil {
		t.Errorf("expected the wide bucket table (nb %d, %d entries)", x.nb, len(x.ents))
	}
	ref := newRef(f)
	for i := 0; i < 50000; i++ {
		var num string
		switch i % 3 {
		case 0:
			num = "12345678" + digits(rnd.IntN(8))
		case 1:
			num = f.Routes[rnd.IntN(len(f.Routes))].Prefix + digits(rnd.IntN(3))
		default:
			num = digits(1 + rnd.IntN(12))
		}
		if num == "" {
			continue
		}
		want, _ := ref.match("", num)
		got, ok := tab.Lookup("", num)
		if ok != (want >= 0) || ok && got.Line != f.Routes[want].Line {
			t.Fatalf("%q: Lookup = %+v %v, reference %d", num, got, ok, want)
		}
	}
}
