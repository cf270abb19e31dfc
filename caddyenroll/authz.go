package caddyenroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// authz is what call authorization shares across sites: the route table
// (rebuilt whenever the configuration file changes), the set of revoked
// certificate serials (refreshed from the CAs' CRLs and updated at once on
// local revocations) and the token signers.
type authz struct {
	mu      sync.RWMutex
	revoked map[string]bool // "profile/serial"
	current map[string]bool // devices whose current certificate is revoked

	signerMu sync.Mutex
	signers  map[string]signerEntry

	// signalling address → device, rebuilt with the route table
	deviceByAddr atomic.Pointer[map[string]string]

	// certificates already matched to the records this server keeps
	identMu sync.RWMutex
	idents  map[string]identity // by SHA-256 of the certificate DER
}

type identity struct{ device, profile, serial string }

const maxCachedIdentities = 10000

// signerEntry is a token signer checked once: valid until renewAt, for
// as long as its CA is the one in use.
type signerEntry struct {
	signer  *osp.TokenSigner
	ca      *ca.CA
	renewAt time.Time
}

func (a *App) routingOptions() routing.Options {
	return routing.Options{MaxDestinations: a.MaxDestinations, SignalAddress: a.DeviceAddresses}
}

// rebuildRoutes builds the route table from the parsed file, and the map
// from signalling addresses back to devices.
func (a *App) rebuildRoutes(f *configfile.File) error {
	t, err := routing.Build(f, a.routingOptions())
	if err != nil {
		return err
	}
	byAddr := make(map[string]string, len(f.Devices))
	for i := range f.Devices {
		if d, ok := t.Device(f.Devices[i].Name); ok {
			byAddr[strings.ToLower(d.SignalAddress)] = d.Name
		}
	}
	if a.router == nil {
		a.router = routing.NewRouter(t)
	} else {
		a.router.Swap(t)
	}
	a.authz.deviceByAddr.Store(&byAddr)
	return nil
}

// deviceAt names the device whose signalling address is addr.
func (a *App) deviceAt(addr string) (string, bool) {
	m := a.authz.deviceByAddr.Load()
	if m == nil {
		return "", false
	}
	norm, err := osp.NormalizeSignalAddress(addr)
	if err != nil {
		return "", false
	}
	d, ok := (*m)[strings.ToLower(norm)]
	return d, ok
}

// refreshRevoked reloads the revoked serials from every CA's CRL and the
// devices' current certificates from the enrollment state, so that a
// revocation made by another instance sharing the storage is seen here.
func (a *App) refreshRevoked(ctx context.Context) error {
	revoked := make(map[string]bool)
	for profile, c := range a.cas {
		der, err := c.CRL(ctx)
		if err != nil {
			return fmt.Errorf("CRL of %s CA: %v", profile, err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return err
		}
		for _, e := range crl.RevokedCertificateEntries {
			revoked[profile+"/"+e.SerialNumber.Text(16)] = true
		}
	}
	current := make(map[string]bool)
	keys, err := a.storage.List(ctx, path.Join(statePrefix, "devices"), false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, k := range keys {
		var d DeviceRecord
		if ok, err := a.state.loadJSON(ctx, k, &d); err != nil || !ok {
			continue
		}
		if revoked[d.Profile+"/"+strings.ToLower(d.Serial)] {
			current[strings.ToLower(d.Device)] = true
		}
	}
	a.authz.mu.Lock()
	a.authz.revoked, a.authz.current = revoked, current
	a.authz.mu.Unlock()
	return nil
}

// noteRevoked records local revocations at once.
func (a *App) noteRevoked(profile, device string, serials []string, current bool) {
	a.authz.mu.Lock()
	defer a.authz.mu.Unlock()
	if a.authz.revoked == nil {
		a.authz.revoked, a.authz.current = map[string]bool{}, map[string]bool{}
	}
	for _, s := range serials {
		a.authz.revoked[profile+"/"+strings.ToLower(s)] = true
	}
	if device != "" {
		if current {
			a.authz.current[strings.ToLower(device)] = true
		} else {
			delete(a.authz.current, strings.ToLower(device))
		}
	}
}

// serialRevoked reports whether a certificate of a profile is revoked.
func (a *App) serialRevoked(profile, serial string) bool {
	a.authz.mu.RLock()
	defer a.authz.mu.RUnlock()
	return a.authz.revoked[profile+"/"+strings.ToLower(serial)]
}

// eligible is the routing hook: a device qualifies unless the current
// certificate this server issued it is revoked. (Devices marked enrolled by
// an imported file, with no certificate from this server, qualify: the flag
// is the truth.)
func (a *App) eligible(device string) bool {
	a.authz.mu.RLock()
	defer a.authz.mu.RUnlock()
	return !a.authz.current[strings.ToLower(device)]
}

// usable reports whether a device may take part in calls: enabled and
// enrolled in the configuration file, and eligible.
func (a *App) usable(table *routing.Table, device string) bool {
	d, ok := table.Device(device)
	return device != "" && ok && d.Enabled && d.Enrolled && a.eligible(device)
}

// identifyByCertificate finds the device a TLS client certificate was
// issued to: it must be byte for byte a certificate this server issued
// (so MD5-signed legacy certificates, which Go's TLS stack cannot verify,
// are accepted exactly when they are ours) and not revoked.
func (a *App) identifyByCertificate(ctx context.Context, cert *x509.Certificate) (device, profile string, err error) {
	serial := cert.SerialNumber.Text(16)
	key := ca.FingerprintHex(cert.Raw)
	a.authz.identMu.RLock()
	id, hit := a.authz.idents[key]
	a.authz.identMu.RUnlock()
	if hit {
		if a.serialRevoked(id.profile, id.serial) {
			return "", id.profile, fmt.Errorf("certificate %s of %s is revoked", id.serial, id.device)
		}
		return id.device, id.profile, nil
	}
	for p, c := range a.cas {
		rec, err := c.Lookup(ctx, serial)
		if err != nil || rec == nil {
			continue
		}
		if string(rec.DER) != string(cert.Raw) {
			continue
		}
		if rec.Revoked || a.serialRevoked(p, serial) {
			return "", p, fmt.Errorf("certificate %s of %s is revoked", serial, rec.Device)
		}
		a.authz.identMu.Lock()
		if a.authz.idents == nil || len(a.authz.idents) >= maxCachedIdentities {
			a.authz.idents = make(map[string]identity)
		}
		a.authz.idents[key] = identity{device: rec.Device, profile: p, serial: serial}
		a.authz.identMu.Unlock()
		return rec.Device, p, nil
	}
	return "", "", fmt.Errorf("client certificate %s was not issued by this clearinghouse", serial)
}

// tokenSigner returns the token signing key and certificate of a profile,
// creating or renewing them in storage when missing, expiring (last third
// of their life) or issued by another CA.
func (a *App) tokenSigner(ctx context.Context, profile string) (*osp.TokenSigner, error) {
	a.authz.signerMu.Lock()
	defer a.authz.signerMu.Unlock()
	c, err := a.authority(profile)
	if err != nil {
		return nil, err
	}
	if e, ok := a.authz.signers[profile]; ok && e.ca == c && time.Now().Before(e.renewAt) {
		return e.signer, nil
	}
	lock := "clearinghouse_osp_token_" + profile
	if err := a.storage.Lock(ctx, lock); err != nil {
		return nil, err
	}
	defer a.storage.Unlock(context.WithoutCancel(ctx), lock)
	keyKey := path.Join("clearinghouse", "osp", profile, "token.key")
	certKey := path.Join("clearinghouse", "osp", profile, "token.crt")
	if s, err := loadSigner(ctx, a, keyKey, certKey); err == nil && signerFresh(s, c) {
		a.setSigner(profile, s, c)
		return s, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	is, err := c.IssueTokenSigner(key.Public(), c.Root().Subject.CommonName+" token signer", 90*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := a.storage.Store(ctx, keyKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, err
	}
	if err := a.storage.Store(ctx, certKey, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.DER})); err != nil {
		return nil, err
	}
	s := &osp.TokenSigner{Cert: is.Cert, Key: key}
	a.setSigner(profile, s, c)
	a.log.Info("new OSP token signer", zap.String("profile", profile), zap.String("serial", is.Serial),
		zap.Time("not_after", is.NotAfter))
	return s, nil
}

func (a *App) setSigner(profile string, s *osp.TokenSigner, c *ca.CA) {
	if a.authz.signers == nil {
		a.authz.signers = make(map[string]signerEntry)
	}
	life := s.Cert.NotAfter.Sub(s.Cert.NotBefore)
	a.authz.signers[profile] = signerEntry{signer: s, ca: c, renewAt: s.Cert.NotAfter.Add(-life / 3)}
}

func signerFresh(s *osp.TokenSigner, c *ca.CA) bool {
	now := time.Now()
	life := s.Cert.NotAfter.Sub(s.Cert.NotBefore)
	if now.After(s.Cert.NotAfter.Add(-life / 3)) {
		return false
	}
	// issued by this CA (checked with the issuer's key: the legacy root's
	// own MD5 self-signature is not involved)
	return c.Issuer().CheckSignature(s.Cert.SignatureAlgorithm, s.Cert.RawTBSCertificate, s.Cert.Signature) == nil
}

func loadSigner(ctx context.Context, a *App, keyKey, certKey string) (*osp.TokenSigner, error) {
	kb, err := a.storage.Load(ctx, keyKey)
	if err != nil {
		return nil, err
	}
	cb, err := a.storage.Load(ctx, certKey)
	if err != nil {
		return nil, err
	}
	kblock, _ := pem.Decode(kb)
	cblock, _ := pem.Decode(cb)
	if kblock == nil || cblock == nil {
		return nil, errors.New("token signer: bad PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("token signer: key cannot sign")
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, err
	}
	return &osp.TokenSigner{Cert: cert, Key: signer}, nil
}
