package caddyenroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(ClientVerifier{})
}

// ClientVerifier is a client certificate verifier
// (`tls.client_auth.verifier.enroll`) that lets a TLS handshake through
// only with a certificate this clearinghouse issued, byte for byte, and has
// not revoked; with `usable`, also only while its device is `enabled` and
// `enrolled` in the configuration file. The trust pool alone accepts any
// certificate the operational CA ever signed, revoked ones included: with
// this verifier every handler of the site (a reverse proxy to a
// provisioning service, a file server) sees only devices in good standing,
// not only the osp handler, which checks the same itself.
//
//	tls {
//	    client_auth {
//	        mode require_and_verify
//	        trust_pool enroll
//	        verifier enroll [usable]
//	    }
//	}
//
// It runs at every handshake, resumed sessions included, so a revocation
// (through this instance's admin API at once; another instance's within
// the revocation refresh) ends new connections of the device; connections
// already open stay open. With `mode request` (legacy MD5 certificates,
// which Go cannot verify) it is what keeps foreign certificates out.
type ClientVerifier struct {
	// Usable also requires the certificate's device to be enabled and
	// enrolled in the configuration file, and routing's view of it to be
	// current (the osp handler's rule for devices taking part in calls).
	Usable bool `json:"usable,omitempty"`

	app *App
}

// verifyTimeout bounds the storage lookup of a certificate not seen before.
const verifyTimeout = 5 * time.Second

// CaddyModule returns the Caddy module information.
func (ClientVerifier) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.client_auth.verifier.enroll",
		New: func() caddy.Module { return new(ClientVerifier) },
	}
}

// Provision finds the enroll app.
func (v *ClientVerifier) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("enroll")
	if err != nil {
		return fmt.Errorf("the enroll client certificate verifier needs the enroll app: %v", err)
	}
	v.app = appIface.(*App)
	return nil
}

// VerifyClientCertificate implements caddytls.ClientCertificateVerifier.
func (v *ClientVerifier) VerifyClientCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return errors.New("no client certificate")
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return fmt.Errorf("client certificate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	device, _, err := v.app.identifyByCertificate(ctx, cert)
	if err != nil {
		return err
	}
	if v.Usable {
		if name := v.app.fileName(device); !v.app.usable(v.app.router.Load(), name) {
			return fmt.Errorf("device %s of client certificate %s is not enabled and enrolled", name, cert.SerialNumber.Text(16))
		}
	}
	return nil
}

// UnmarshalCaddyfile parses `verifier enroll [usable]`.
func (v *ClientVerifier) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	for d.NextArg() {
		switch d.Val() {
		case "usable":
			if v.Usable {
				return d.Errf("usable given twice")
			}
			v.Usable = true
		default:
			return d.Errf("unknown argument %q of the enroll verifier (usable is the only one)", d.Val())
		}
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("the enroll verifier takes no block")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*ClientVerifier)(nil)
	_ caddytls.ClientCertificateVerifier = (*ClientVerifier)(nil)
	_ caddyfile.Unmarshaler              = (*ClientVerifier)(nil)
)
