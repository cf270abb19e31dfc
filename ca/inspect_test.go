package ca

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestDecodeCSR(t *testing.T) {
	// Find a request whose base64 has '+', '/' and needs padding, so every
	// rewriting rule is exercised.
	var der []byte
	for i := 0; i < 200; i++ {
		d := makeCSR(t, testKey(t, "p256"), csrOpts{cn: "device1.itsp.com"})
		s := base64.StdEncoding.EncodeToString(d)
		if strings.Contains(s, "+") && strings.Contains(s, "/") && strings.HasSuffix(s, "=") {
			der = d
			break
		}
	}
	if der == nil {
		t.Fatal("no suitable request")
	}
	std := base64.StdEncoding.EncodeToString(der)
	wrap := func(s string, n int, sep string) string {
		var b strings.Builder
		for i := 0; i < len(s); i += n {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(s[i:min(i+n, len(s))])
		}
		return b.String()
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	good := map[string]string{
		"der":              string(der),
		"pem":              pemText,
		"pem crlf":         strings.ReplaceAll(pemText, "\n", "\r\n"),
		"pem new":          strings.ReplaceAll(pemText, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
		"pem form-decoded": strings.ReplaceAll(pemText, "+", " "),
		"pem with junk":    "junk before\n" + pemText + "junk after",
		"base64":           std,
		"base64 lines":     wrap(std, 64, "\n"),
		"base64 crlf 76":   wrap(std, 76, "\r\n"),
		"base64 indented":  "   " + wrap(std, 64, "\n   ") + "\n",
		"base64 unpadded":  strings.TrimRight(std, "="),
		"base64 url":       base64.URLEncoding.EncodeToString(der),
		"base64 rawurl":    base64.RawURLEncoding.EncodeToString(der),
		"form plus":        strings.ReplaceAll(std, "+", " "),
		"form plus lines":  wrap(strings.ReplaceAll(std, "+", " "), 64, "\n"),
		"percent escapes":  strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std),
		"spaces in lines":  wrap(std, 4, " "),
	}
	for name, in := range good {
		got, err := DecodeCSR([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, der) {
			t.Errorf("%s: wrong DER", name)
		}
		if _, err := ParseCSR([]byte(in), Policy{}); err != nil {
			t.Errorf("%s: ParseCSR: %v", name, err)
		}
	}
	bad := map[string]string{
		"empty":       "",
		"blank":       " \n\t ",
		"garbage":     "operation=request&device=1",
		"truncated":   std[:len(std)/2],
		"trailing":    base64.StdEncoding.EncodeToString(append(append([]byte(nil), der...), 0x00)),
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"no END":      strings.Split(pemText, "-----END")[0],
		"too large":   strings.Repeat("A", MaxCSRSize+1),
		"bad der":     string(der[:len(der)-1]),
	}
	for name, in := range bad {
		if _, err := DecodeCSR([]byte(in)); !errors.Is(err, ErrMalformedCSR) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	der := []byte("hello")
	const hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if FingerprintHex(der) != hex {
		t.Fatal(FingerprintHex(der))
	}
	fp := Fingerprint(der)
	if len(fp) != 95 || !strings.HasPrefix(fp, "2C:F2:4D:BA:") || strings.ReplaceAll(strings.ToLower(fp), ":", "") != hex {
		t.Fatal(fp)
	}
}

func TestDescribe(t *testing.T) {
	ctx := context.Background()
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	csr := makeCSR(t, testKey(t, "rsa2048"), csrOpts{cn: "device1.itsp.com", dns: []string{"device1.itsp.com"}})
	is, err := c.Issue(ctx, csr, "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	c.Revoke(ctx, is.Serial, ReasonSuperseded)
	crl, _ := c.CRL(ctx)
	cases := map[string]struct {
		in   []byte
		want []string
	}{
		"cert":     {is.DER, []string{"Certificate:", "device1.itsp.com", "TLS Web Client Authentication", Fingerprint(is.DER)}},
		"cert pem": {is.PEM(), []string{"Certificate:", "ECDSA-SHA256"}},
		"root":     {c.Root().Raw, []string{"CA:TRUE"}},
		"csr":      {csr, []string{"Certificate Request:", "CN=device1.itsp.com", "(2048 bit)", "DNS:device1.itsp.com", "SHA256-RSA"}},
		"csr b64":  {[]byte(base64.StdEncoding.EncodeToString(csr)), []string{"Certificate Request:"}},
		"md5 csr":  {readPEMFile(t, "testdata/openssl-rsa1024-md5.csr.pem"), []string{"MD5-RSA", "(1024 bit)", "TransNexus, LLC"}},
		"crl":      {crl, []string{is.Serial[len(is.Serial)-4:]}},
	}
	for name, tc := range cases {
		s, err := Describe(tc.in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(strings.ToLower(s), strings.ToLower(w)) {
				t.Errorf("%s: output lacks %q:\n%s", name, w, s)
			}
		}
	}
	if _, err := Describe([]byte("nothing")); err == nil {
		t.Error("garbage described")
	}
}

// A '+' that form decoding turned into ' ' may land at the start or end of a
// wrapped line; it must not be mistaken for indentation.
func TestDecodeCSRPlusAtLineEdges(t *testing.T) {
	hits := 0
	for i := 0; i < 300 && hits < 4; i++ {
		der := makeCSR(t, testKey(t, "p256"), csrOpts{cn: "device1.itsp.com"})
		std := base64.StdEncoding.EncodeToString(der)
		for _, width := range []int{64, 76} {
			var lines []string
			for j := 0; j < len(std); j += width {
				lines = append(lines, std[j:min(j+width, len(std))])
			}
			edge := false
			for _, ln := range lines {
				if ln[0] == '+' || ln[len(ln)-1] == '+' {
					edge = true
				}
			}
			if !edge {
				continue
			}
			hits++
			in := strings.ReplaceAll(strings.Join(lines, "\r\n"), "+", " ")
			got, err := DecodeCSR([]byte(in))
			if err != nil || !bytes.Equal(got, der) {
				t.Fatalf("width %d: %v", width, err)
			}
		}
	}
	if hits == 0 {
		t.Skip("no request with '+' at a line edge")
	}
}
