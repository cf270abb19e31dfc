package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// readGolden returns a testdata/*.golden body: the file minus its leading
// '#' comment lines, byte for byte.
func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	return testutil.GoldenBody(t, filepath.Join("testdata", name))
}

// readDER returns the DER of the first PEM block of testdata/name.
func readDER(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	return p.Bytes
}

// escapeAll is the toolkit's escaping, written independently of appendEscape.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// wrap inserts sep every n bytes of s.
func wrap(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString(sep)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

// sameRequest compares requests treating nil and empty slices alike.
func sameRequest(a, b *Request) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Operation != b.Operation || !bytes.Equal(a.Nonce, b.Nonce) || a.Username != b.Username ||
		a.Password != b.Password || a.Device != b.Device || a.Customer != b.Customer ||
		!bytes.Equal(a.CSR, b.CSR) || a.CSRField != b.CSRField || !bytes.Equal(a.CACert, b.CACert) ||
		len(a.Extra) != len(b.Extra) {
		return false
	}
	for i := range a.Extra {
		if a.Extra[i] != b.Extra[i] {
			return false
		}
	}
	return true
}

func sameResponse(a, b *Response) bool {
	return a.Status == b.Status && bytes.Equal(a.Certificate, b.Certificate) && a.Nonce == b.Nonce && a.Error == b.Error
}

// wantDecodeError checks err is a *DecodeError of class and field.
func wantDecodeError(t *testing.T, err error, class error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v on %q", class, field)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *DecodeError", err, err)
	}
	if !errors.Is(err, class) {
		t.Errorf("error %q: class %v, want %v", err, de.Err, class)
	}
	if de.Field != field {
		t.Errorf("error %q: field %q, want %q", err, de.Field, field)
	}
	if de.Msg == "" {
		t.Errorf("error %q: empty Msg", err)
	}
}
