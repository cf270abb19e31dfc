package osp

import (
	"regexp"
	"testing"
	"time"
)

// The AuthorisationResponse Authorize builds for the captured request has
// the shape, byte for byte, of the answer the toolkit accepted
// (authorisation-response-accepted.xml), once ids, random attributes,
// times, the transaction id and the token are substituted; and its
// unsigned token has the shape of token-unsigned-accepted.xml.
func TestGoldenAuthorisationResponse(t *testing.T) {
	req := authRequest(t)
	// The capture's window: ValidAfter = now − 1 min, ValidUntil = now + 10 min.
	rsp, err := Authorize(req, []Destination{{SignalAddress: "127.0.0.2:5060"}}, nil, testNow, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := readTestdata(t, "authorisation-response-accepted.xml")
	if got, want := normalize(out), normalize(golden); got != want {
		t.Fatalf("shape differs\n--- got\n%s\n--- want\n%s", got, want)
	}
	tok := rsp.Destinations[0].Token
	if got, want := normalize(tok), normalize(readTestdata(t, "token-unsigned-accepted.xml")); got != want {
		t.Fatalf("token shape differs\n--- got\n%s\n--- want\n%s", got, want)
	}

	// And with the capture's values substituted back, exactly the bytes.
	rsp.MessageID, rsp.Random, rsp.ComponentID, rsp.TransactionID = "9", "8", "9476230650", 1234567
	info, err := ParseTokenInfo(tok)
	if err != nil {
		t.Fatal(err)
	}
	info.Random, info.TransactionID = "3", 1234567
	if rsp.Destinations[0].Token, err = info.Encode(); err != nil {
		t.Fatal(err)
	}
	if string(rsp.Destinations[0].Token) != string(readTestdata(t, "token-unsigned-accepted.xml")) {
		t.Fatalf("token\n%s", rsp.Destinations[0].Token)
	}
	out, _ = rsp.Marshal()
	if string(out) != string(golden) {
		t.Fatalf("bytes differ\n%s", out)
	}
}

var interTag = regexp.MustCompile(`>\n<`)

// ConfirmUsage's answer to the captured UsageIndication has the elements of
// usage-confirmation-accepted.xml, componentId echoed. (The writer puts a
// newline after every tag, as the accepted AuthorisationResponse has; the
// toolkit keeps text between elements as the parent's value, which it
// never reads for container elements, so that is the only difference.)
func TestGoldenUsageConfirmation(t *testing.T) {
	ind, err := ParseUsageIndication(readTestdata(t, "usage-indication.xml"))
	if err != nil {
		t.Fatal(err)
	}
	c := ConfirmUsage(ind, StatusOK, testNow)
	if c.MessageID != ind.MessageID || c.Confirmations[0].ComponentID != "12345672" {
		t.Fatalf("ids not echoed: %+v", c)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := readTestdata(t, "usage-confirmation-accepted.xml")
	compact := interTag.ReplaceAll(out, []byte("><"))
	if got, want := normalize(compact), normalize(golden); got != want {
		t.Fatalf("shape differs\n--- got\n%s\n--- want\n%s", got, want)
	}
	// With the capture's values, exactly its bytes.
	c.MessageID, c.Random = "77", "5"
	c.Confirmations[0].Timestamp = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	out, _ = c.Marshal()
	if got := string(interTag.ReplaceAll(out, []byte("><"))); got != string(golden) {
		t.Fatalf("bytes differ\n%s", got)
	}
}
