package caddyenroll

import (
	"crypto/x509"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(TrustPool{})
}

// TrustPool is a TLS trust pool (`tls.ca_pool.source.enroll`) holding the
// operational CA certificates of the enroll app, so that a site's
// `client_auth` accepts exactly the certificates devices got by enrollment:
//
//	tls {
//	    client_auth {
//	        mode verify_if_given
//	        trust_pool enroll [modern] [legacy]
//	    }
//	}
//
// Go's TLS stack cannot verify MD5 signatures: for the legacy profile use
// `mode request`; the osp handler then accepts a client certificate only
// when it is byte for byte one this server issued and has not revoked.
type TrustPool struct {
	// CA profiles whose certificates are trusted: "modern", "legacy" or
	// both. Default: modern.
	Profiles []string `json:"profiles,omitempty"`

	pool  *x509.CertPool
	certs []*x509.Certificate
}

// CaddyModule returns the Caddy module information.
func (TrustPool) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.ca_pool.source.enroll",
		New: func() caddy.Module { return new(TrustPool) },
	}
}

// Provision loads the CA certificates from the enroll app.
func (p *TrustPool) Provision(ctx caddy.Context) error {
	if len(p.Profiles) == 0 {
		p.Profiles = []string{profileModern}
	}
	if err := checkPoolProfiles(p.Profiles); err != nil {
		return err
	}
	appIface, err := ctx.App("enroll")
	if err != nil {
		return fmt.Errorf("the enroll trust pool needs the enroll app: %v", err)
	}
	app := appIface.(*App)
	p.pool = x509.NewCertPool()
	for _, profile := range p.Profiles {
		c, err := app.authority(profile)
		if err != nil {
			return err
		}
		for _, cert := range c.Chain() {
			p.pool.AddCert(cert)
			p.certs = append(p.certs, cert)
		}
	}
	return nil
}

// CertPool implements caddytls.CA.
func (p TrustPool) CertPool() *x509.CertPool { return p.pool }

// Certificates implements caddytls.CertificateProvider.
func (p TrustPool) Certificates() []*x509.Certificate { return p.certs }

// UnmarshalCaddyfile parses `trust_pool enroll [<profile>...]`.
func (p *TrustPool) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	add := func(profiles []string) error {
		if err := checkPoolProfiles(profiles); err != nil {
			return d.Err(err.Error())
		}
		p.Profiles = append(p.Profiles, profiles...)
		return nil
	}
	if err := add(d.RemainingArgs()); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "profiles":
			if err := add(d.RemainingArgs()); err != nil {
				return err
			}
		default:
			return d.Errf("unknown option %q", d.Val())
		}
	}
	return nil
}

// checkPoolProfiles refuses a profile other than modern and legacy (JSON
// configs reach Provision without the Caddyfile's check).
func checkPoolProfiles(profiles []string) error {
	for _, pr := range profiles {
		if pr != profileModern && pr != profileLegacy {
			return fmt.Errorf("profiles: unknown CA profile %q (want %q or %q)", pr, profileModern, profileLegacy)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner            = (*TrustPool)(nil)
	_ caddytls.CA                  = (*TrustPool)(nil)
	_ caddytls.CertificateProvider = (*TrustPool)(nil)
	_ caddyfile.Unmarshaler        = (*TrustPool)(nil)
)
