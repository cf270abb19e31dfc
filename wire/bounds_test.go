package wire

import (
	"strconv"
	"strings"
	"testing"
)

// Bounds an attacker controls exactly: the limits are inclusive, and
// errors point at the right offset. Found by a mutation audit (a bound
// moved by one, an offset miscounted) that the other tables let pass.

// fillBody returns "operation=getcacert" followed by unknown variables
// whose values bring the body to exactly n bytes (each value within
// MaxValueLen).
func fillBody(t *testing.T, head string, n int) []byte {
	t.Helper()
	b := []byte(head)
	for i := 0; len(b) < n; i++ {
		pre := "&f" + strconv.Itoa(i) + "="
		v := min(MaxValueLen, n-len(b)-len(pre))
		if v < 1 {
			t.Fatalf("cannot fill to %d bytes", n)
		}
		b = append(b, pre...)
		b = append(b, strings.Repeat("x", v)...)
	}
	return b
}

func TestBodyLimitIsInclusive(t *testing.T) {
	body := fillBody(t, "operation=getcacert", MaxBody)
	if _, err := DecodeRequest(body); err != nil {
		t.Errorf("request of exactly MaxBody bytes: %v", err)
	}
	_, err := DecodeRequest(append(body, 'x'))
	wantDecodeError(t, err, ErrTooLarge, "")

	resp := fillBody(t, "status=2", MaxBody)
	if _, err := DecodeResponse(resp); err != nil {
		t.Errorf("response of exactly MaxBody bytes: %v", err)
	}
	_, err = DecodeResponse(append(resp, 'x'))
	wantDecodeError(t, err, ErrTooLarge, "")
}

func TestDecodeRequestErrorOffsets(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"=x", "offset 0"},
		{"operation=getcacert&=x", "offset 20"},
		{"operation=getcacert&&=x", "offset 21"},
		{"operation=getcacert&abc&nonce=1", "offset 20"},
		{"operation=getcacert&a=1&bc", "offset 24"},
		{"operation=getcacert&a=1&b=%", "offset 24: value: bad %-escape at offset 0"},
	} {
		_, err := DecodeRequest([]byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeRequest(%q) = %v, want %q in it", tt.body, err, tt.want)
		}
	}
}

func TestUnsupportedOperationQuotesAtMost32Bytes(t *testing.T) {
	for _, op := range []string{strings.Repeat("a", 32) + "S", strings.Repeat("a", 32) + "SECRETTAIL"} {
		_, err := DecodeRequest([]byte("operation=" + op))
		wantDecodeError(t, err, ErrUnsupportedOperation, "operation")
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(op[:32])) || strings.Contains(err.Error(), op[:33]) {
			t.Errorf("%d bytes: error %v should quote exactly the first 32", len(op), err)
		}
	}
}

func TestDecodeRequestNames(t *testing.T) {
	for _, tt := range []struct{ body, name string }{
		// 192 bytes on the wire, 64 decoded: within MaxNameLen
		{"operation=getcacert&" + strings.Repeat("%6E", MaxNameLen) + "=1", strings.Repeat("n", MaxNameLen)},
		// '+' is a space in names too (HTML form rule)
		{"operation=getcacert&x+y=1", "x y"},
	} {
		r, err := DecodeRequest([]byte(tt.body))
		if err != nil {
			t.Errorf("DecodeRequest(%q): %v", tt.body, err)
			continue
		}
		if len(r.Extra) != 1 || r.Extra[0].Name != tt.name {
			t.Errorf("DecodeRequest(%q).Extra = %q, want one named %q", tt.body, r.Extra, tt.name)
		}
	}
}

func TestResponseLenMatchesEncoding(t *testing.T) {
	for _, r := range []Response{
		{Status: -1},
		{Status: -7, Error: "x"},
		{Status: -100}, // "-100" would be longer than "14"
		{Status: StatusOK, Certificate: []byte{1, 2, 3, 4}},
		{Status: 123456, Nonce: "a b", Error: "c&d"},
	} {
		if n, got := ResponseLen(r), len(EncodeResponse(r)); n != got {
			t.Errorf("ResponseLen(%+v) = %d, encoding has %d bytes", r, n, got)
		}
	}
}

// The texts travel in error= and scripts match them: they are part of the
// protocol, pinned here.
func TestStatusTexts(t *testing.T) {
	want := []string{
		"ok", "pending", "bad request", "bad credentials", "enrollment disabled",
		"unknown device", "device disabled", "bad certificate request", "rejected",
		"nonce reused", "rate limited", "not found", "ssl required", "customer mismatch",
		"server error", "unsupported operation",
	}
	if len(Statuses()) != len(want) {
		t.Fatalf("%d statuses, %d texts", len(Statuses()), len(want))
	}
	for code, w := range want {
		if got := StatusText(code); got != w {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, w)
		}
	}
}

func TestDecodeBase64LooseErrorMessages(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		// a length no encoder produces says so (not only "illegal data")
		{"AAAAA", "truncated?"},
		// the error reported is the first reading's (inner space as '+'),
		// not the last one tried (spaces dropped)
		{"QQ QQ\nQ=Q", "offset 6"},
	} {
		_, err := DecodeBase64Loose([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeBase64Loose(%q) = %v, want %q in it", tt.in, err, tt.want)
		}
	}
}
