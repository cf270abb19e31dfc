package osp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The parser, NormalizeSignalAddress and the writers give what the
// implementations of orig_test.go gave.

// parseCases are documents around the edges of parseTreeFast: each must
// parse, or fail, exactly as with parseTreeOrig.
var parseCases = []string{
	``,
	` `,
	`<`,
	`<a`,
	`<a/>`,
	`<a></a>`,
	`<a></b>`,
	`<a><b></a></b>`,
	`<a/><b/>`,
	`<a/>x`,
	`x<a/>`,
	" \r\n\t<a/> \r\n\t",
	`<?xml version="1.0"?><a/>`,
	`<?xml version="1.0" encoding="UTF-8"?><a/>`,
	`<?xml version="1.0" encoding="utf-8"?><a/>`,
	`<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
	`<?xml version="1.0" encoding="us-ascii"?><a>b</a>`,
	`<?xml version="1.1"?><a/>`,
	` <?xml version="1.0"?><a/>`,
	"\xef\xbb\xbf<?xml version=\"1.0\"?><a/>",
	`<a/><?pi x?>`,
	`<a><?pi x?></a>`,
	`<a><!-- c --></a>`,
	`<a><![CDATA[x<y]]></a>`,
	`<!DOCTYPE a><a/>`,
	`<a>&amp;</a>`,
	`<a>&#65;</a>`,
	`<a>&bogus;</a>`,
	`<a>]]></a>`,
	`<a>]</a>`,
	`<a>></a>`,
	`<a b="x>y"/>`,
	`<a b="x<y"/>`,
	`<a b="&lt;"/>`,
	`<a b='1' c = "2" />`,
	`<a b="1"c="2"/>`,
	`<a b=1/>`,
	`<a b/>`,
	`<a b="1" b="2"/>`,
	`<a xmlns="urn:x" b="1"/>`,
	`<a xmlns:p="urn:x"><p:b/></a>`,
	`<p:a/>`,
	`<a:/>`,
	`<:a/>`,
	`<a:b:c/>`,
	`<1a/>`,
	`<-a/>`,
	`<a.b-c_d1/>`,
	`<_a/>`,
	`<é/>`,
	`<aé/>`,
	`<a>é€😀</a>`,
	"<a>\xff</a>",
	"<a>\x00</a>",
	"<a>\x7f</a>",
	"<a b=\"\x01\"/>",
	"<a>\uFFFE</a>",
	"<a>\uFFFD</a>",
	"<a>\ufeff</a>",
	"<a>1\r\n2</a>",
	"<a>\r\n12\r\n</a>",
	"<a>1\r2</a>",
	"<a b=\"1\r\n2\"/>",
	"<a b=\"1\n\t2\"/>",
	"<a>\n<b>1</b>\r\n</a>",
	`<a>x<b/></a>`,
	`<a><b/>x</a>`,
	`<a>x<b/>y</a>`,
	`<a> x <b/> </a>`,
	`<a>  </a>`,
	`<a></a >`,
	`<a></ a>`,
	`<a/ >`,
	`<a / >`,
	`<a	b="1"	/>`,
	`<a><b><c><d><e/></d></c></b></a>`,
	`<a b="1" c="2" d="3"/>`,
	`<a><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/><b/></a>`,
	`<a>` + strings.Repeat(`<b>`, 17) + strings.Repeat(`</b>`, 17) + `</a>`,
	`<a x=">"><b>1</b></a>`,
	`<Message messageId="1" random="2"><AuthorizationRequest componentId="3"/></Message>`,
	`<Message messageId="" random=""><Bogus critical="false">x</Bogus></Message>`,
}

// parseLimits are DefaultLimits and limits the cases above reach.
var parseLimits = []Limits{
	DefaultLimits,
	{MaxBytes: 200, MaxDepth: 3, MaxElements: 12, MaxAttrs: 2},
	{MaxBytes: 64 << 10, MaxDepth: 0, MaxElements: 0, MaxAttrs: 0},
}

// sameTree describes the first difference between a tree and the
// original parser's, "" when there is none.
func sameTree(got *node, want *origNode) string {
	if got.name != want.name {
		return fmt.Sprintf("name %q, want %q", got.name, want.name)
	}
	if len(got.attrs) != len(want.attrs) {
		return fmt.Sprintf("<%s> attributes %q, want %q", got.name, got.attrs, want.attrs)
	}
	for i := range got.attrs {
		if got.attrs[i] != want.attrs[i] {
			return fmt.Sprintf("<%s> attributes %q, want %q", got.name, got.attrs, want.attrs)
		}
	}
	if got.value() != want.value() {
		return fmt.Sprintf("<%s> value %q, want %q", got.name, got.value(), want.value())
	}
	i := 0
	for c := range got.children {
		if i >= len(want.children) {
			return fmt.Sprintf("<%s> has more than %d children", got.name, len(want.children))
		}
		if d := sameTree(c, want.children[i]); d != "" {
			return d
		}
		i++
	}
	if i != len(want.children) {
		return fmt.Sprintf("<%s> has %d children, want %d", got.name, i, len(want.children))
	}
	return ""
}

// checkParse compares parseTree with parseTreeOrig. parseTree gets a copy
// of data that is overwritten afterwards: the tree must not refer to it.
func checkParse(t *testing.T, data []byte, lim Limits) {
	t.Helper()
	in := bytes.Clone(data)
	got, err := parseTree(in, lim)
	for i := range in {
		in[i] = '#'
	}
	want, wantErr := parseTreeOrig(data, lim)
	switch {
	case err != nil || wantErr != nil:
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%+v %q:\nerror %v\nwant  %v", lim, data, err, wantErr)
		}
		if err != nil && StatusOf(err) != StatusOf(wantErr) {
			t.Fatalf("%q: status %v, want %v", data, StatusOf(err), StatusOf(wantErr))
		}
	default:
		if d := sameTree(got, want); d != "" {
			t.Fatalf("%+v %q: %s", lim, data, d)
		}
	}
}

// compatDocs are the captures, the seeds of the fuzz targets and what the
// writers produce.
func compatDocs(t testing.TB) [][]byte {
	var docs [][]byte
	for _, n := range append(append([]string{"token-unsigned-accepted.xml"}, requestSeeds...), answerSeeds...) {
		docs = append(docs, readTestdata(t, n))
	}
	for _, seeds := range extraSeeds(t) {
		docs = append(docs, seeds...)
	}
	rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.1:5060", Device: "trunk-1"}, {SignalAddress: "gw.example.net"}}, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, out, rsp.Destinations[0].Token)
	for _, c := range parseCases {
		docs = append(docs, []byte(c))
	}
	return docs
}

func TestParseTreeMatchesOriginal(t *testing.T) {
	for _, doc := range compatDocs(t) {
		for _, lim := range parseLimits {
			checkParse(t, doc, lim)
		}
	}
}

// What devices and this package send takes the fast path.
func TestParseTreeFastPath(t *testing.T) {
	docs := compatDocs(t)
	for _, doc := range docs[:len(docs)-len(parseCases)] {
		if bytes.Contains(doc, []byte("<!DOCTYPE")) {
			continue // a seed of the refusal
		}
		if _, ok := parseTreeFast(doc, DefaultLimits); !ok {
			t.Errorf("parseTreeFast does not take\n%s", doc)
		}
	}
}

func FuzzParseTree(f *testing.F) {
	for _, doc := range compatDocs(f) {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range parseLimits {
			checkParse(t, data, lim)
		}
	})
}

func FuzzNormalizeSignalAddress(f *testing.F) {
	for _, s := range []string{
		"", "1.2.3.4", "1.2.3.4:5060", "[1.2.3.4]:5060", "[1.2.3.4]", "[::1]:5060", "::1", "[::ffff:1.2.3.4]:1",
		"::ffff:1.2.3.4", "[fe80::1%eth0]:5060", "fe80::1%eth0", "Host.Example.NET.:05060", "host:", "host:0",
		"host:+1", "host:65536", "[1.2.3.4]x", "[1.2.3.4]:", "[1.2.3.4", "-a.b", "a..b", "a_b:1", "1.2.3:4",
		"01.2.3.4", strings.Repeat("a", 64) + ".b", strings.Repeat("a.", 140), "[" + strings.Repeat("1", 250) + "]",
		"1.2.3.4:5060:1", "ÄÖ.example", "[]:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeSignalAddress(s)
		want, wantErr := origNormalizeSignalAddress(s)
		if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%q: %q, %v; want %q, %v", s, got, err, want, wantErr)
		}
	})
}

// FuzzWriters compares TokenInfo.Encode and AuthorisationResponse.Marshal
// (and so every writer primitive they share with the other messages) with
// the original writer.
func FuzzWriters(f *testing.F) {
	f.Add("3", "14048724799", "1678", "[127.0.0.2]:5060", "", []byte("1"), testNow.Unix(), int64(600), uint64(1234567), int64(14400), "", 200, "success", "9")
	f.Add("", "a&<>\"'\r\n\tb", "\x01", "", "net", []byte{}, int64(-62135596800), int64(-1), uint64(0), int64(0), "voice", -1, "", "")
	f.Add("r", "é", "x\xff", "y", "z", []byte{0, 1, 2}, int64(253402300800), int64(1), ^uint64(0), int64(1<<40), "video", 603, "decline", "\uFFFE")
	zone := time.FixedZone("x", -5*3600-1800)
	f.Fuzz(func(t *testing.T, random, src, dst, addr, network string, callID []byte, at, validity int64, tx uint64, maxSec int64, svc string, code int, desc, id string) {
		after := time.Unix(at, 0).In(zone)
		var until time.Time
		if validity >= 0 {
			until = after.Add(time.Duration(validity) * time.Second)
		}
		info := &TokenInfo{
			Random: random, SourceInfo: Info{TypeE164, src}, DestinationInfo: Info{dst, dst},
			SignalAddress: addr, NetworkID: network, CallID: callID, ValidAfter: after, ValidUntil: until,
			TransactionID: tx, MaxDuration: time.Duration(maxSec) * time.Second, Service: svc,
		}
		got, err := info.Encode()
		want, wantErr := origEncodeToken(info)
		if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("Encode\n%q %v\nwant\n%q %v", got, err, want, wantErr)
		}
		d := ResponseDestination{
			SourceInfo: info.SourceInfo, Protocol: svc, OSPVersion: random, DestinationInfo: info.DestinationInfo,
			SignalAddress: addr, NetworkID: network, Token: callID, ValidAfter: after, ValidUntil: until,
			MaxDuration: info.MaxDuration, Service: svc, CallID: []byte(random),
		}
		rsp := &AuthorisationResponse{
			MessageID: id, Random: random, ComponentID: desc, Timestamp: until, Status: Status{code, desc},
			TransactionID: tx, Destinations: []ResponseDestination{d, {}, d},
		}
		got, err = rsp.Marshal()
		want, wantErr = origMarshalAuthRsp(rsp)
		if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("Marshal\n%q %v\nwant\n%q %v", got, err, want, wantErr)
		}
	})
}

// The writers' size estimates hold what the usual messages need, so that
// they are written without growing the buffer.
func TestWriterSizes(t *testing.T) {
	ported, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", toolkitNP))
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*AuthorizationRequest{authRequest(t), ported} {
		checkWriterSizes(t, req)
	}
}

func checkWriterSizes(t *testing.T, req *AuthorizationRequest) {
	rsp, err := Authorize(req, []Destination{{SignalAddress: "10.0.0.1:5060", Device: "trunk-1"}, {SignalAddress: "gw.example.net"}}, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	rsp.TransactionID = ^uint64(0) >> 1
	for _, d := range rsp.Destinations {
		info, err := ParseTokenInfo(d.Token)
		if err != nil {
			t.Fatal(err)
		}
		info.Random, info.TransactionID = "4294967295", ^uint64(0)>>1
		tok, _ := info.Encode()
		if len(tok) > info.size() {
			t.Errorf("token of %d bytes, estimate %d", len(tok), info.size())
		}
	}
	out, _ := rsp.Marshal()
	size := answerSize(rsp.MessageID, rsp.Random, rsp.ComponentID, rsp.Status)
	for i := range rsp.Destinations {
		size += destinationSize(&rsp.Destinations[i])
	}
	if len(out) > size {
		t.Errorf("answer of %d bytes, estimate %d", len(out), size)
	}
}

func FuzzDecodeBin(f *testing.F) {
	for _, enc := range []string{"base64", "", "cdata", "hex"} {
		for _, v := range []string{"", "MQ==", " M Q=\n=\t", "MQ", "MQ=", "M===", "!!!!", "TWFu", "TWFuTWFu", "\r\nTWFu\r\n", "abc"} {
			f.Add(v, enc, 4)
		}
	}
	f.Fuzz(func(t *testing.T, v, enc string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		n := &node{name: "CallId", attrs: []xmlAttr{{"encoding", enc}}, val: v}
		want, wantErr := origDecodeBin(n, max)
		got, err := decodeBin(n, max)
		arena := make([]byte, 1, 1+len(v))
		inArena, arenaErr := decodeBinTo(&arena, n, max)
		for _, g := range []struct {
			b   []byte
			err error
		}{{got, err}, {inArena, arenaErr}} {
			if !bytes.Equal(g.b, want) || (g.b == nil) != (want == nil) || fmt.Sprint(g.err) != fmt.Sprint(wantErr) {
				t.Fatalf("%q %q %d: %q %v, want %q %v", v, enc, max, g.b, g.err, want, wantErr)
			}
		}
		if cap(got) != cap(want) && enc == "base64" {
			t.Fatalf("%q: capacity %d, want %d", v, cap(got), cap(want))
		}
	})
}
