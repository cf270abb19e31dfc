package ca

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSeeds are the inputs the fuzz targets start from; they are also
// committed under testdata/fuzz/<target>/ (regenerate with
// CA_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus ./ca/).
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, f := range []string{"openssl-rsa1024-md5", "openssl-rsa512-md5", "openssl-rsa1024-sha1"} {
		b, err := os.ReadFile(filepath.Join("testdata", f+".csr.pem"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
		blk, _ := pem.Decode(b)
		seeds = append(seeds, blk.Bytes)
	}
	der := seeds[1]
	std := base64.StdEncoding.EncodeToString(der)
	seeds = append(seeds,
		[]byte(std),
		[]byte(strings.ReplaceAll(std, "+", " ")),
		[]byte(base64.RawURLEncoding.EncodeToString(der)),
		[]byte(strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std)),
		[]byte("junk\n-----BEGIN CERTIFICATE REQUEST-----\n"+std[:40]+"\n -----END CERTIFICATE REQUEST-----"),
		[]byte("-----BEGIN NEW CERTIFICATE REQUEST-----\n"),
		[]byte{0x30, 0x80, 0x00, 0x00},
		[]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
		[]byte("%zz%2"),
		[]byte("===="),
		[]byte(""),
	)
	return seeds
}

func FuzzDecodeCSR(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		der, err := DecodeCSR(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedCSR) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		if len(der) == 0 || len(der) > MaxCSRSize || !isDERSequence(der) {
			t.Fatalf("DecodeCSR returned %d bytes that are not one DER SEQUENCE", len(der))
		}
		// Decoding is idempotent on its own output.
		again, err := DecodeCSR(der)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("not idempotent: %v", err)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, legacy bool) {
		p := Policy{Legacy: legacy, AllowRSA1024: legacy, AllowP521: true}
		csr, err := ParseCSR(in, p)
		if err != nil {
			for _, k := range []error{ErrMalformedCSR, ErrBadSignature, ErrKeyPolicy, ErrLegacyAlgorithm, ErrUnsupportedAlgorithm} {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error of unexpected kind: %v", err)
		}
		if csr.PublicKey == nil || len(csr.PublicKeySHA256) != 64 || csr.SignatureAlgorithm == "" {
			t.Fatalf("accepted request without key or algorithm: %+v", csr)
		}
		if csr.Legacy && !legacy {
			t.Fatal("legacy signature accepted without the policy")
		}
		_, _ = Describe(in)
	})
}

// TestWriteFuzzCorpus (re)writes the committed seed corpus.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CA_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set CA_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(vals, "\n") + "\n"
		sum := sha256.Sum256([]byte(body))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range fuzzSeeds(t) {
		write("FuzzDecodeCSR", fmt.Sprintf("[]byte(%q)", s))
		write("FuzzParseCSR", fmt.Sprintf("[]byte(%q)", s), "bool(true)")
	}
}
