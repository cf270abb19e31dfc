package enrollclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
)

// KeyType is the device key algorithm.
type KeyType string

// Key types. ECDSA P-256 is the default; RSA is for legacy peers that cannot
// verify ECDSA.
const (
	KeyP256    KeyType = "p256"
	KeyP384    KeyType = "p384"
	KeyRSA2048 KeyType = "rsa2048"
	KeyRSA3072 KeyType = "rsa3072"
	KeyRSA4096 KeyType = "rsa4096"
)

// KeyTypes lists the accepted key types, default first.
func KeyTypes() []KeyType { return []KeyType{KeyP256, KeyP384, KeyRSA2048, KeyRSA3072, KeyRSA4096} }

// ParseKeyType accepts the names of KeyTypes, case-insensitively, plus a few
// spellings ("P-256", "ecdsa-p384", "rsa-2048").
func ParseKeyType(s string) (KeyType, error) {
	n := strings.NewReplacer("-", "", "_", "", "ecdsa", "").Replace(strings.ToLower(strings.TrimSpace(s)))
	switch n {
	case "", "p256":
		return KeyP256, nil
	case "p384":
		return KeyP384, nil
	case "rsa2048":
		return KeyRSA2048, nil
	case "rsa3072":
		return KeyRSA3072, nil
	case "rsa4096":
		return KeyRSA4096, nil
	}
	return "", configErr("unknown key type %q (want p256, p384, rsa2048, rsa3072 or rsa4096)", s)
}

// GenerateKey makes a new private key of type t on this device.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, configErr("unknown key type %q", string(t))
}

// keyTypeOf is the KeyType GenerateKey makes keys like pub with, if any.
func keyTypeOf(pub crypto.PublicKey) (KeyType, bool) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return KeyP256, true
		case "P-384":
			return KeyP384, true
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return KeyRSA2048, true
		case 3072:
			return KeyRSA3072, true
		case 4096:
			return KeyRSA4096, true
		}
	}
	return "", false
}

// KeyDescription names a key for humans: "ECDSA P-256", "RSA 2048".
func KeyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// CreateCSR builds the device's PKCS#10 request (DER): subject CN = name and
// the name as subject alternative name (DNS, or IP when name is an address).
func CreateCSR(key crypto.Signer, name string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	return x509.CreateCertificateRequest(rand.Reader, tmpl, key)
}

// checkDeviceName accepts an IP address, or a DNS name the clearinghouse
// can certify (ca.NormalizeDevice and ca.CheckDeviceName on the server):
// labels of letters, digits and inner '-', a last label not all digits,
// at most 64 characters (a certificate's common name). The seed identifies
// a device by "an IP address or a Domain Name System (DNS) name"; a name
// the server would refuse (status 7) is refused here, before a key is made
// for it.
func checkDeviceName(name string) error {
	if name == "" {
		return configErr("device name (DNS name or IP address) is required")
	}
	if net.ParseIP(name) != nil {
		return nil
	}
	if len(name) > maxCommonName {
		return configErr("device name %q is %d characters; a certificate's common name holds at most %d", name, len(name), maxCommonName)
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return configErr("device name %q is not a DNS name", name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return configErr("device name %q is not a DNS name (character %q)", name, c)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return configErr("device name %q is not a DNS name (its last label is all digits) nor an IP address in full form", name)
	}
	return nil
}

// maxCommonName is the length a certificate's common name holds (RFC 5280,
// ub-common-name).
const maxCommonName = 64

func marshalKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key PEM block")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func csrPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// parseCertPEM returns the first certificate of a PEM file.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	der, err := pemBlock(data, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// pemBlock returns the content of the first PEM block of type typ.
func pemBlock(data []byte, typ string) ([]byte, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("no %s PEM block", typ)
		}
		if b.Type == typ {
			return b.Bytes, nil
		}
	}
}

type equalKey interface{ Equal(crypto.PublicKey) bool }

func samePublicKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(equalKey)
	return ok && ea.Equal(b)
}
