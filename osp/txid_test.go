package osp

import (
	"bytes"
	"testing"
)

// Ids that TransactionIDs made are recognized under its key, and no other:
// another key's, altered ones, zero, those with the top bit set.
func TestTransactionIDs(t *testing.T) {
	key := bytes.Repeat([]byte{7}, TransactionKeySize)
	ids, err := NewTransactionIDs(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewTransactionIDs(bytes.Repeat([]byte{8}, TransactionKeySize))
	seen := map[uint64]bool{}
	foreign, flipped := 0, 0
	for range 2000 {
		id := ids.New()
		if id == 0 || id>>63 != 0 {
			t.Fatalf("id %#x: not a non-zero 63-bit number", id)
		}
		if seen[id] {
			t.Fatalf("id %#x made twice", id)
		}
		seen[id] = true
		if !ids.Issued(id) {
			t.Fatalf("id %#x not recognized by its maker", id)
		}
		if other.Issued(id) {
			foreign++ // 2^-24 each
		}
		for bit := range 63 {
			if !ids.Issued(id ^ 1<<bit) {
				continue
			}
			// a flip in the MAC never passes; one in the random part is
			// another id, whose MAC matches with probability 2^-24
			// (78,000 flips here: about one run in 200 has one, e.g.
			// 0xdc9b0cf4d1a3 with bit 24 flipped under this key)
			if bit < txMACBits {
				t.Fatalf("id %#x with MAC bit %d flipped is recognized", id, bit)
			}
			flipped++
		}
	}
	if foreign > 1 {
		t.Errorf("%d of 2000 ids recognized under another key", foreign)
	}
	if flipped > 2 {
		t.Errorf("%d ids with a random bit flipped recognized (expected about 0.005)", flipped)
	}
	// the example above: a flipped random bit that passes is not the test's
	// failure
	if ex := uint64(0xdc9b0cf4d1a3); !ids.Issued(ex) || !ids.Issued(ex^1<<24) {
		t.Errorf("%#x and %#x: want both recognized under this key", ex, ex^1<<24)
	}
	valid := ids.New()
	for _, id := range []uint64{0, 1, 1<<24 - 1, 1<<63 | valid} {
		if ids.Issued(id) {
			t.Errorf("id %#x recognized", id)
		}
	}
	if (*TransactionIDs)(nil).Issued(valid) {
		t.Error("a nil maker recognizes an id")
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := NewTransactionIDs(make([]byte, n)); err == nil {
			t.Errorf("a key of %d bytes accepted", n)
		}
	}
	// the maker keeps its own copy of the key
	key[0] = 9
	if id := ids.New(); !ids.Issued(id) {
		t.Error("changing the caller's key slice changed the maker")
	}
}

// An authorization's transaction id, in the answer and in every token, is
// the maker's.
func TestAuthorizeTransaction(t *testing.T) {
	ids, _ := NewTransactionIDs(bytes.Repeat([]byte{1}, TransactionKeySize))
	dests := []Destination{{SignalAddress: "10.0.0.1:5060"}, {SignalAddress: "10.0.0.2:5060"}}
	rsp, err := AuthorizeTransaction(authRequest(t), dests, nil, testNow, 0, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Issued(rsp.TransactionID) {
		t.Fatalf("transaction id %#x not the maker's", rsp.TransactionID)
	}
	for i, d := range rsp.Destinations {
		info, err := ParseTokenInfo(d.Token)
		if err != nil || info.TransactionID != rsp.TransactionID {
			t.Errorf("destination %d: token of transaction %v (%v), want %d", i, info, err, rsp.TransactionID)
		}
	}
	plain, _ := Authorize(authRequest(t), dests, nil, testNow, 0)
	if plain.TransactionID == 0 {
		t.Error("Authorize without a maker: no transaction id")
	}
}

// The ids of a maker For a source name it: that maker and SourceOf
// recognize them, a maker for another source, or for none (as earlier
// versions made ids), does not; the ids made without a source are still
// recognized as such, and a source's tag is never 0 (which marks them).
func TestTransactionIDsFor(t *testing.T) {
	ids, _ := NewTransactionIDs(bytes.Repeat([]byte{7}, TransactionKeySize))
	other, _ := NewTransactionIDs(bytes.Repeat([]byte{8}, TransactionKeySize))
	gw1, gw2 := ids.For("gw1.example"), ids.For("gw2.example")
	if ids.Tag("gw1.example") == 0 || ids.Tag("gw1.example") == ids.Tag("gw2.example") || ids.Tag("") != 0 ||
		ids.For("") == nil || ids.For("").Issued(gw1.New()) || !ids.For("").Issued(ids.New()) {
		t.Fatalf("tags: gw1 %#x, gw2 %#x, none %#x", ids.Tag("gw1.example"), ids.Tag("gw2.example"), ids.Tag(""))
	}
	if ids.Tag("gw1.example") == other.Tag("gw1.example") {
		t.Error("a source has the same tag under two keys")
	}
	for _, c := range []struct {
		name  string
		maker *TransactionIDs
		tag   uint32
	}{{"gw1", gw1, ids.Tag("gw1.example")}, {"gw2", gw2, ids.Tag("gw2.example")}, {"no source", ids, 0}} {
		wrong := 0
		for range 500 {
			id := c.maker.New()
			if id == 0 || id>>63 != 0 {
				t.Fatalf("%s: id %#x is not a non-zero 63-bit number", c.name, id)
			}
			if tag, ok := ids.SourceOf(id); !ok || tag != c.tag || !c.maker.Issued(id) {
				t.Fatalf("%s: id %#x has source %#x (%v), want %#x", c.name, id, tag, ok, c.tag)
			}
			for _, m := range []*TransactionIDs{gw1, gw2, ids, other, other.For("gw1.example")} {
				if m != c.maker && m.Issued(id) {
					wrong++ // 2^-24 each
				}
			}
		}
		if wrong > 1 {
			t.Errorf("%s: %d ids recognized by makers for other sources or keys", c.name, wrong)
		}
	}
	for _, id := range []uint64{0, 1<<24 - 1, 1<<63 | gw1.New()} {
		if _, ok := ids.SourceOf(id); ok {
			t.Errorf("SourceOf(%#x): ok", id)
		}
	}
	var none *TransactionIDs
	if none.For("gw1.example") != nil || none.Tag("gw1.example") != 0 || none.For("gw1.example").Issued(gw1.New()) {
		t.Error("a nil maker makes a maker, a tag or recognizes an id")
	}
}

// The id format is shared by every instance holding the key, whatever its
// version: a source's tag is the first 24 bits of HMAC-SHA256(source)
// under HMAC-SHA256(key, "osp transaction source tags"), the MAC those of
// HMAC-SHA256(key, r as 8 bytes big-endian). Values computed apart (Python
// hmac).
func TestTransactionIDsKnownAnswer(t *testing.T) {
	ids, _ := NewTransactionIDs(bytes.Repeat([]byte{7}, TransactionKeySize))
	const r = 0x1234567
	for _, tc := range []struct {
		name      string
		got, want uint64
	}{
		{"tag of gw1.example", uint64(ids.Tag("gw1.example")), 0x79e020},
		{"MAC of r", ids.mac(r), 0xaa8f71},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
	id := uint64(r)<<txMACBits | (0xaa8f71 ^ 0x79e020)
	if !ids.For("gw1.example").Issued(id) {
		t.Errorf("id %#x not recognized for gw1.example", id)
	}
	if tag, ok := ids.SourceOf(id); !ok || tag != 0x79e020 {
		t.Errorf("SourceOf(%#x) = %#x, %v", id, tag, ok)
	}
}
