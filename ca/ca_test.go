package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpenLifecycle(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()

	// No crypto item: new CA, devices must re-enroll.
	c1, res := openCA(t, st, Config{}, "")
	if !res.Created || !res.ReenrollRequired || res.Replaced {
		t.Fatalf("empty: %+v", res)
	}
	p, err := ParseCryptoParams(res.CryptoParam)
	if err != nil || p.Profile != ProfileModern || p.Algorithm != P256 || p.Fingerprint != FingerprintHex(c1.Root().Raw) {
		t.Fatalf("param %q: %+v %v", res.CryptoParam, p, err)
	}
	if c1.CryptoParam() != res.CryptoParam || c1.Params() != p {
		t.Fatal("CryptoParam mismatch")
	}

	// Naming it loads the same CA, no re-enrollment.
	c2, res := openCA(t, st, Config{}, res.CryptoParam)
	if res.Created || res.ReenrollRequired || !bytes.Equal(c2.Root().Raw, c1.Root().Raw) {
		t.Fatalf("reload: %+v", res)
	}
	// Case, colons and quotes are tolerated.
	fp := Fingerprint(c1.Root().Raw)
	if _, res := openCA(t, st, Config{}, `"MODERN:P256:SHA256:`+fp+`"`); res.Created {
		t.Fatal("colon-hex form not loaded")
	}
	// A certificate signed by one instance verifies with the other's root.
	is, err := c2.Sign(makeCSR(t, testKey(t, "p256"), csrOpts{}), "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	verifyClientAuth(t, c1, is.Cert, testNow)

	// Empty again: a NEW CA even though storage has one (seed: absent means
	// generate), and the old one is still loadable by name.
	c3, res := openCA(t, st, Config{}, "")
	if !res.Created || bytes.Equal(c3.Root().Raw, c1.Root().Raw) {
		t.Fatal("empty param did not create a new CA")
	}
	if c3.Root().Subject.String() == c1.Root().Subject.String() {
		t.Fatal("successive CAs share a subject name")
	}
	if _, res := openCA(t, st, Config{}, c1.CryptoParam()); res.Created {
		t.Fatal("old CA lost")
	}

	// Table 7's placeholder: unknown, replaced.
	_, res = openCA(t, st, Config{}, "keys")
	if !res.Created || !res.ReenrollRequired || !res.Replaced {
		t.Fatalf("'keys': %+v", res)
	}
	_, res = openCA(t, st, Config{}, "'keys'")
	if !res.Replaced {
		t.Fatalf("quoted 'keys': %+v", res)
	}

	// Documented form, unknown CA: error naming it.
	missing := "modern:p256:sha256:" + strings.Repeat("ab", 32)
	_, _, err = Open(ctx, st, Config{Now: fixedNow}, missing)
	if !errors.Is(err, ErrCANotInStorage) || !strings.Contains(err.Error(), "crypto parameters name CA sha256:"+strings.Repeat("ab", 32)+" which is not in storage") {
		t.Fatalf("missing CA: %v", err)
	}
	// Wrong algorithm for the stored CA.
	wrong := strings.Replace(c1.CryptoParam(), ":p256:", ":p384:", 1)
	if _, _, err := Open(ctx, st, Config{Now: fixedNow}, wrong); !errors.Is(err, ErrBadCryptoParam) {
		t.Fatalf("wrong algorithm: %v", err)
	}
	// Malformed documented-looking values are parse errors.
	for _, bad := range []string{
		"modern:p256:sha256:zz",
		"modern:p256:sha256:" + strings.Repeat("a", 63),
		"modern:p999:sha256:" + strings.Repeat("a", 64),
		"modern:p256:sha1:" + strings.Repeat("a", 64),
		"modern:p256",
		"legacy:p256:sha256:" + strings.Repeat("a", 64),
		"x sha256:abc",
		c1.CryptoParam() + " " + c3.CryptoParam(),
	} {
		if _, _, err := Open(ctx, st, Config{Now: fixedNow}, bad); !errors.Is(err, ErrBadCryptoParam) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestCryptoParamsRoundTrip(t *testing.T) {
	p := CryptoParams{Profile: ProfileLegacy, Algorithm: RSA3072, Fingerprint: strings.Repeat("0f", 32)}
	q, err := ParseCryptoParams(p.String())
	if err != nil || q != p {
		t.Fatal(q, err)
	}
	for _, s := range []string{"P-256", "ecdsa-p384", "RSA_2048", "Ed25519"} {
		if _, err := ParseAlgorithm(s); err != nil {
			t.Error(s, err)
		}
	}
}

func TestOpenFileStorePermissions(t *testing.T) {
	dir := t.TempDir()
	st := NewFileStore(dir)
	c, _ := openCA(t, st, Config{Intermediate: true, Algorithm: Ed25519}, "")
	keyFile := filepath.Join(dir, "data", filepath.FromSlash(c.StoragePrefix()), "intermediate.key")
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(keyFile)
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("key is not PKCS#8 PEM")
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		if d.IsDir() && p != dir && fi.Mode().Perm() != 0o700 {
			return fmt.Errorf("dir %s mode %v", p, fi.Mode().Perm())
		}
		if !d.IsDir() && fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("file %s mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The root key may be taken offline: the CA still opens and signs.
	if err := os.Remove(filepath.Join(filepath.Dir(keyFile), "root.key")); err != nil {
		t.Fatal(err)
	}
	c2, res := openCA(t, NewFileStore(dir), Config{}, c.CryptoParam())
	if res.Created {
		t.Fatal("recreated")
	}
	is, err := c2.Sign(makeCSR(t, testKey(t, "p256"), csrOpts{}), "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	verifyClientAuth(t, c, is.Cert, testNow)
	// Nothing printable reveals the key.
	keyBlock, _ := pem.Decode(b)
	for _, s := range []string{fmt.Sprint(c2), fmt.Sprintf("%+v", c2), fmt.Sprintf("%#v", c2), fmt.Sprintf("%v", *c2)} {
		if strings.Contains(s, "PRIVATE") || bytes.Contains([]byte(s), keyBlock.Bytes[len(keyBlock.Bytes)-16:]) {
			t.Fatal("key material printed")
		}
	}
}

func TestOpenOperatorFiles(t *testing.T) {
	ctx := context.Background()
	// Make an operator CA (root + intermediate) with the package itself.
	src, _ := openCA(t, NewMemStore(), Config{Intermediate: true, Algorithm: P384}, "")
	dir := t.TempDir()
	certFile := filepath.Join(dir, "ca.pem")
	keyFile := filepath.Join(dir, "ca.key")
	var chainPEM []byte
	for _, ce := range src.Chain() {
		chainPEM = append(chainPEM, certPEM(ce.Raw)...)
	}
	keyPEM, _ := marshalKeyPEM(src.signer)
	os.WriteFile(certFile, chainPEM, 0o644)
	os.WriteFile(keyFile, keyPEM, 0o644)

	cfg := Config{CertFile: certFile, KeyFile: keyFile, Now: fixedNow}
	if _, _, err := Open(ctx, NewMemStore(), cfg, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	os.Chmod(keyFile, 0o600)

	st := NewMemStore()
	c, res, err := Open(ctx, st, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || !res.ReenrollRequired || c.CryptoParam() != src.CryptoParam() {
		t.Fatalf("operator: %+v", res)
	}
	if _, res, err = Open(ctx, st, cfg, src.CryptoParam()); err != nil || res.ReenrollRequired {
		t.Fatalf("operator named: %v %+v", err, res)
	}
	if _, _, err = Open(ctx, st, cfg, "modern:p384:sha256:"+strings.Repeat("cd", 32)); !errors.Is(err, ErrCANotInStorage) {
		t.Fatalf("operator mismatch: %v", err)
	}
	is, err := c.Sign(makeCSR(t, testKey(t, "rsa2048"), csrOpts{}), "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	verifyClientAuth(t, src, is.Cert, testNow)

	// A key that does not match, a non-CA certificate.
	other, _ := openCA(t, NewMemStore(), Config{Algorithm: P384}, "")
	otherKey, _ := marshalKeyPEM(other.signer)
	os.WriteFile(keyFile, otherKey, 0o600)
	if _, _, err := Open(ctx, NewMemStore(), cfg, ""); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: %v", err)
	}
	os.WriteFile(certFile, certPEM(is.DER), 0o644)
	if _, _, err := Open(ctx, NewMemStore(), cfg, ""); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Fatalf("leaf as CA: %v", err)
	}
}

func TestRootAndIntermediateShape(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256, Intermediate: true})
	root, inter := c.Root(), c.Issuer()
	if root.Subject.CommonName != "Clearinghouse Operational CA Root" || inter.Subject.CommonName != "Clearinghouse Operational CA" {
		t.Fatal(root.Subject, inter.Subject)
	}
	if !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) {
		t.Fatal("intermediate AKI")
	}
	if inter.NotAfter.After(root.NotAfter) || root.NotAfter.Sub(testNow) != 3650*24*time.Hour {
		t.Fatal("validity", root.NotAfter, inter.NotAfter)
	}
	if !root.NotBefore.Equal(testNow.Add(-Backdate)) {
		t.Fatal("root notBefore", root.NotBefore)
	}
	_ = x509.KeyUsageCertSign
}

// barrierStore holds every Lock until n callers have come to it: the
// Opens below all read the Store before any of them generates.
type barrierStore struct {
	countedStore
	all   chan struct{}
	once  sync.Once
	n     int
	count atomic.Int32
}

func (s *barrierStore) Lock(ctx context.Context, name string) error {
	if int(s.count.Add(1)) == s.n {
		s.once.Do(func() { close(s.all) })
	}
	<-s.all
	return s.countedStore.Lock(ctx, name)
}

// Instances sharing a Store that start together on an empty crypto item
// agree on one CA.
func TestOpenConcurrentGenerate(t *testing.T) {
	const n = 4
	st := &barrierStore{countedStore: NewMemStore(), all: make(chan struct{}), n: n}
	params := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, res, err := Open(context.Background(), st, Config{Now: fixedNow}, "")
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Created || !res.ReenrollRequired {
				t.Errorf("an adopted CA is not reported new (devices must re-enroll): %+v", res)
			}
			params <- res.CryptoParam
		}()
	}
	wg.Wait()
	close(params)
	var first string
	for p := range params {
		if first == "" {
			first = p
		} else if p != first {
			t.Fatalf("two CAs: %s and %s", first, p)
		}
	}
	// a later Open on an empty item adopts it while no configuration names
	// it (its process has not recorded it yet, or stopped before)
	ctx := context.Background()
	c, res, err := Open(ctx, st.countedStore, Config{Now: fixedNow}, "")
	if err != nil || res.CryptoParam != first || !res.Adopted {
		t.Fatalf("an empty item later, the CA unnamed: %s (adopted %v), %v; want %s adopted", res.CryptoParam, res.Adopted, err, first)
	}
	// once named, an empty item is the operator asking for a new one
	if err := c.MarkNamed(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	_, res, err = Open(ctx, st.countedStore, Config{Now: fixedNow}, "")
	if err != nil || res.CryptoParam == first || !res.Created || res.Adopted {
		t.Fatalf("an empty item later, the CA named: %s (created %v), %v; want a new CA", res.CryptoParam, res.Created, err)
	}
}

// What `current` says decides what Open does on an empty item: a CA no
// configuration named yet is adopted; a named one, or the value an
// earlier version wrote, is not; the CA the configuration names now
// (Config.Named) is adopted whatever `current` says.
func TestOpenAdoptsOnlyUnnamedOrNamedNow(t *testing.T) {
	ctx := context.Background()
	cur := func(st Store) string {
		b, err := st.Load(ctx, "clearinghouse/ca/modern/current")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	t.Run("a failed naming leaves it unnamed", func(t *testing.T) {
		st := NewMemStore()
		c, _ := openCA(t, st, Config{}, "")
		if err := c.MarkNamed(ctx, func() error { return errors.New("disk full") }); err == nil {
			t.Fatal("MarkNamed hid the error")
		}
		if got := cur(st); got != c.CryptoParam()+" unnamed" {
			t.Fatalf("current %q", got)
		}
		if _, res, err := Open(ctx, st, Config{Now: fixedNow}, ""); err != nil || res.CryptoParam != c.CryptoParam() {
			t.Fatalf("%+v, %v; want %s adopted", res, err, c.CryptoParam())
		}
	})
	t.Run("earlier version's current", func(t *testing.T) {
		st := NewMemStore()
		c, _ := openCA(t, st, Config{}, "")
		if err := st.Store(ctx, "clearinghouse/ca/modern/current", []byte(c.CryptoParam()+"\n")); err != nil {
			t.Fatal(err)
		}
		if _, res, err := Open(ctx, st, Config{Now: fixedNow}, ""); err != nil || res.CryptoParam == c.CryptoParam() || res.Adopted {
			t.Fatalf("%+v, %v; want a new CA", res, err)
		}
	})
	t.Run("opening the item naming it repairs the mark", func(t *testing.T) {
		st := NewMemStore()
		c, _ := openCA(t, st, Config{}, "")
		// a crash after the file named it, before the mark
		if _, _, err := Open(ctx, st, Config{Now: fixedNow}, c.CryptoParam()); err != nil {
			t.Fatal(err)
		}
		if got := cur(st); got != c.CryptoParam() {
			t.Fatalf("current %q after the named CA was opened", got)
		}
	})
	t.Run("named now", func(t *testing.T) {
		st := NewMemStore()
		c, _ := openCA(t, st, Config{}, "")
		if err := c.MarkNamed(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		called := false
		named := func(context.Context) (string, error) { called = true; return c.CryptoParam(), nil }
		_, res, err := Open(ctx, st, Config{Now: fixedNow, Named: named}, "keys")
		if err != nil || !called || res.CryptoParam != c.CryptoParam() || !res.Adopted || !res.Replaced {
			t.Fatalf("%+v, %v; want %s adopted", res, err, c.CryptoParam())
		}
		named = func(context.Context) (string, error) { return "", errors.New("unreadable") }
		if _, _, err := Open(ctx, st, Config{Now: fixedNow, Named: named}, ""); err == nil || !strings.Contains(err.Error(), "unreadable") {
			t.Fatalf("an unreadable configuration: %v", err)
		}
	})
}

// Open refuses storage that does not hold together with the item naming it.
func TestOpenRefusesMismatchedStorage(t *testing.T) {
	ctx := context.Background()
	t.Run("intermediate not signed by the root", func(t *testing.T) {
		st := NewMemStore()
		c, _ := openCA(t, st, Config{Intermediate: true}, "")
		other, _ := openCA(t, NewMemStore(), Config{}, "")
		if err := st.Store(ctx, c.key(keyIntCert), certPEM(other.Root().Raw)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Open(ctx, st, Config{Intermediate: true, Now: fixedNow}, c.CryptoParam()); err == nil || !strings.Contains(err.Error(), "not a CA certificate signed by root") {
			t.Fatalf("foreign intermediate: %v", err)
		}
	})
	t.Run("the legacy CA under the modern profile", func(t *testing.T) {
		st := NewMemStore()
		leg, _ := openCA(t, st, Config{Profile: ProfileLegacy}, "")
		p := leg.Params()
		p.Profile = ProfileModern
		if _, _, err := Open(ctx, st, Config{Profile: ProfileModern, Name: leg.Name(), Now: fixedNow}, p.String()); err == nil || !strings.Contains(err.Error(), "is a legacy CA") {
			t.Fatalf("legacy keys opened as modern: %v", err)
		}
	})
}

func TestNormalizeDeviceTrailingDotIP(t *testing.T) {
	name, ip, err := NormalizeDevice("1.2.3.4.")
	if err != nil || ip == nil || name != "1.2.3.4" {
		t.Fatalf("NormalizeDevice(1.2.3.4.) = %q, %v, %v; want the IP address", name, ip, err)
	}
}

// An intermediate lasts as long as its root unless told otherwise: nothing
// makes a new one under the root, and devices trust the root till its end.
func TestIntermediateValidity(t *testing.T) {
	for _, tc := range []struct {
		name        string
		root, inter time.Duration
		want        time.Duration // the intermediate's, from now
	}{
		{"defaults", 0, 0, 3650 * day},
		{"short root", 30 * day, 0, 30 * day},
		{"shorter intermediate", 0, 365 * day, 365 * day},
		{"intermediate beyond the root", 30 * day, 60 * day, 30 * day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := openCA(t, NewMemStore(), Config{Intermediate: true, RootValidity: tc.root, IntermediateValidity: tc.inter}, "")
			if got := c.Issuer().NotAfter.Sub(testNow); got != tc.want {
				t.Fatalf("intermediate valid %v from now, want %v (root until %v)", got, tc.want, c.Root().NotAfter)
			}
		})
	}
}

// An operator's CA key file readable or writable by anyone but its owner
// (group or others, any of the bits) is refused; 0600 and 0400 are taken.
func TestOpenOperatorKeyFileMode(t *testing.T) {
	ctx := context.Background()
	src, _ := openCA(t, NewMemStore(), Config{Algorithm: P384}, "")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	keyPEM, _ := marshalKeyPEM(src.signer)
	if err := os.WriteFile(certFile, certPEM(src.Root().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o620, false},
		{0o604, false},
		{0o602, false},
		{0o660, false},
	} {
		if err := os.Chmod(keyFile, c.mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := Open(ctx, NewMemStore(), Config{CertFile: certFile, KeyFile: keyFile, Now: fixedNow}, "")
		if c.ok && err != nil {
			t.Errorf("key file mode %v: %v", c.mode, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "chmod 600")) {
			t.Errorf("key file mode %v: %v, want it refused", c.mode, err)
		}
	}
}
