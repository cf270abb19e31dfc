package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm names the key type of a CA.
type Algorithm string

// Supported CA key algorithms.
const (
	P256    Algorithm = "p256" // ECDSA P-256 with SHA-256 (default for the modern profile)
	P384    Algorithm = "p384" // ECDSA P-384 with SHA-384
	Ed25519 Algorithm = "ed25519"
	RSA2048 Algorithm = "rsa2048" // default for the legacy profile
	RSA3072 Algorithm = "rsa3072"
	RSA4096 Algorithm = "rsa4096"
)

// Algorithms lists the supported CA algorithms.
var Algorithms = []Algorithm{P256, P384, Ed25519, RSA2048, RSA3072, RSA4096}

// ParseAlgorithm parses a case-insensitive algorithm name; it also accepts a
// few common spellings ("P-256", "ecdsa-p384", "rsa-2048").
func ParseAlgorithm(s string) (Algorithm, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.NewReplacer("-", "", "_", "", "ecdsa", "", "secp256r1", "p256", "secp384r1", "p384", "prime256v1", "p256").Replace(n)
	for _, a := range Algorithms {
		if n == string(a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("ca: unknown algorithm %q (want one of p256, p384, ed25519, rsa2048, rsa3072, rsa4096)", s)
}

func (a Algorithm) isRSA() bool { return a == RSA2048 || a == RSA3072 || a == RSA4096 }

func (a Algorithm) rsaBits() int {
	switch a {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// generateKey creates a private key for algorithm a. Note: since Go 1.26 the
// standard library draws key randomness from the system CSPRNG regardless of
// the reader passed, so r only matters for older toolchains.
func generateKey(a Algorithm, r io.Reader) (crypto.Signer, error) {
	switch a {
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), r)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(r)
		return k, err
	case RSA2048, RSA3072, RSA4096:
		return rsa.GenerateKey(r, a.rsaBits())
	}
	return nil, fmt.Errorf("ca: unknown algorithm %q", a)
}

// algorithmOf reports the Algorithm of a CA public key.
func algorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return P256, nil
		case elliptic.P384():
			return P384, nil
		}
		return "", fmt.Errorf("ca: unsupported CA curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return Ed25519, nil
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("ca: unsupported CA RSA key size %d (want 2048, 3072 or 4096)", k.N.BitLen())
	}
	return "", fmt.Errorf("ca: unsupported CA key type %T", pub)
}

// marshalKeyPEM encodes a private key as PKCS#8 PEM.
func marshalKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseKeyPEM decodes a PKCS#8, PKCS#1 or SEC 1 private key PEM. Errors never
// include key bytes.
func parseKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("ca: no private key PEM block found")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("ca: encrypted private keys are not supported; decrypt the key file (keep it 0600)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ca: parsing %s block: invalid key encoding", blk.Type)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("ca: private key type %T cannot sign", k)
		}
		return s, nil
	}
}

// parseCertsPEM decodes every CERTIFICATE block of b (DER is accepted too).
func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	if len(b) > 0 && b[0] == 0x30 {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, err
		}
		return []*x509.Certificate{c}, nil
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("ca: no CERTIFICATE PEM block found")
	}
	return out, nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// publicKeysEqual reports whether the public keys a and b are equal.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// subjectPublicKeyBits returns the contents of the subjectPublicKey BIT
// STRING of an SPKI DER, the input of the key identifier hash.
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var seq, alg cryptobyte.String
	var bits []byte
	var bs cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!seq.ReadASN1(&bs, cbasn1.BIT_STRING) || len(bs) < 1 {
		return nil, errors.New("ca: malformed SubjectPublicKeyInfo")
	}
	bits = bs[1:]
	return bits, nil
}

// keyID computes a subject key identifier: the leftmost 160 bits of the
// SHA-256 hash of the subjectPublicKey bits (RFC 7093 section 2, method 1).
func keyID(spki []byte) ([]byte, error) {
	bits, err := subjectPublicKeyBits(spki)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(bits)
	return h[:20], nil
}

// lockedReader serializes a caller-provided random source so that concurrent
// Sign calls can share it.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func defaultRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return &lockedReader{r: r}
}
