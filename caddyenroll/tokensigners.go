package caddyenroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// signerEntry is a token signer checked once: valid until renewAt, for
// as long as its CA is the one in use.
type signerEntry struct {
	signer  *osp.TokenSigner
	ca      *ca.CA
	renewAt time.Time
}

// errSignedTokensIntermediate refuses signed tokens (both forms) of a CA
// with an intermediate.
var errSignedTokensIntermediate = errors.New("signed tokens need a CA without an intermediate (gateways verify them against the root alone); use tokens unsigned only in a lab, or a CA without intermediate")

// caTokenSigner returns the CA of a profile as its own token signer
// (`tokens ca_signed`): tokens without an embedded certificate, small
// enough for the OpenSIPS/Kamailio OSP modules. The rules of tokenSigner
// hold: no intermediate (gateways hold the root and verify with
// PKCS7_NOCHAIN; an intermediate's signature has no path to it), and
// nothing is signed once the CA has expired.
func (a *App) caTokenSigner(profile string) (*osp.TokenSigner, error) {
	c, err := a.authority(profile)
	if err != nil {
		return nil, err
	}
	if len(c.Chain()) > 1 {
		return nil, errSignedTokensIntermediate
	}
	if why := a.caExpired(c); why != "" {
		return nil, fmt.Errorf("%w: %s", errCAExpired, why)
	}
	key, cert := c.TokenSigningKey()
	return &osp.TokenSigner{Cert: cert, Key: key, CASigned: true}, nil
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
	if len(c.Chain()) > 1 {
		// gateways check a token with PKCS7_NOCHAIN against the CA
		// certificate enrollment gave them, the root: a signer the
		// intermediate issued has no path to it
		return nil, errSignedTokensIntermediate
	}
	if e, ok := a.authz.signers[profile]; ok && e.ca == c && a.now().Before(e.renewAt) {
		return e.signer, nil
	}
	// checked before the lock and a new key: asked at every authorization
	if why := a.caExpired(c); why != "" {
		return nil, fmt.Errorf("%w: %s", errCAExpired, why)
	}
	keyKey := path.Join("clearinghouse", "osp", profile, "token.key")
	certKey := path.Join("clearinghouse", "osp", profile, "token.crt")
	// read before the lock: a signer in storage needs no write (a storage
	// that takes no lock file, full or read-only, still starts the site);
	// a pair cut short by a renewal elsewhere does not match, and is read
	// again under the lock
	if s, err := loadSigner(ctx, a, keyKey, certKey); err == nil && signerFresh(s, c, a.now()) {
		a.setSigner(profile, s, c)
		return s, nil
	}
	lock := "clearinghouse_osp_token_" + profile
	if err := a.storage.Lock(ctx, lock); err != nil {
		return nil, err
	}
	defer a.storage.Unlock(context.WithoutCancel(ctx), lock)
	if s, err := loadSigner(ctx, a, keyKey, certKey); err == nil && signerFresh(s, c, a.now()) {
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
	a.authz.signers[profile] = signerEntry{signer: s, ca: c, renewAt: signerRenewAt(s, c)}
}

// signerRenewAt is when a token signer is renewed: in the last third of
// its life, unless it ends with its CA (a new one could not last longer).
func signerRenewAt(s *osp.TokenSigner, c *ca.CA) time.Time {
	if !s.Cert.NotAfter.Before(caEnd(c)) {
		return s.Cert.NotAfter
	}
	life := s.Cert.NotAfter.Sub(s.Cert.NotBefore)
	return s.Cert.NotAfter.Add(-life / 3)
}

func signerFresh(s *osp.TokenSigner, c *ca.CA, now time.Time) bool {
	if !now.Before(signerRenewAt(s, c)) {
		return false
	}
	// issued by this CA: its name (gateways chain by it) and its key (the
	// legacy root's own MD5 self-signature is not involved)
	return bytes.Equal(s.Cert.RawIssuer, c.Issuer().RawSubject) &&
		c.Issuer().CheckSignature(s.Cert.SignatureAlgorithm, s.Cert.RawTBSCertificate, s.Cert.Signature) == nil
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
	// two writes: a crash between them (or another instance renewing)
	// can leave a key without its certificate; such a pair is renewed
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("token signer: key and certificate do not match")
	}
	return &osp.TokenSigner{Cert: cert, Key: signer}, nil
}
