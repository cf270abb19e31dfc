package caddyenroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// authz is what call authorization shares across sites: the route table
// (rebuilt whenever the configuration file changes), the revocation state
// and the token signers.
type authz struct {
	*revocations

	signerMu sync.Mutex
	signers  map[string]signerEntry

	// the transaction ids of authorizations (transactions.go)
	txMu  sync.Mutex
	txIDs *osp.TransactionIDs

	// signalling address → device, made again with the route table when
	// its devices or their addresses change (not their flags)
	deviceByAddr atomic.Pointer[map[string][]string]
	// the route tables of versions about to be put in force, made
	// without the file's lock (prepareRoutes): an edit's and a poll's
	// that meets it may be made at once
	preparedMu sync.Mutex
	prepared   map[*configfile.File]*routeUpdate
	// the version of the file the route table in force was made for, set
	// under the file's lock (followFileChanges)
	routed *configfile.File
	// the index of the file's devices (deviceByAddr's) by their tags in
	// transaction ids (transactions.go)
	sources atomic.Pointer[sourceIndex]

	// certificates already matched to the records this server keeps
	identMu sync.RWMutex
	idents  map[string]identity // by SHA-256 of the certificate DER
}

type identity struct{ device, profile, serial string }

const maxCachedIdentities = 10000

// fileName is how the configuration file writes a device (its name as
// given when the file does not list it), as the route table in force says:
// requests never wait for the file's lock, which a rebuild holds.
func (a *App) fileName(device string) string {
	if a.router != nil {
		if d, ok := a.router.Load().Device(device); ok {
			return d.Name
		}
		return device
	}
	if a.cfg == nil {
		return device
	}
	return a.cfg.device(device).Name
}

// eligible is the routing hook: a device qualifies unless the current
// certificate this server issued it is revoked. (Devices marked enrolled by
// an imported file, with no certificate from this server, qualify: the flag
// is the truth.)
func (a *App) eligible(device string) bool {
	if a.authz == nil { // no revocation state (an app set up without CAs)
		return true
	}
	a.authz.mu.RLock()
	defer a.authz.mu.RUnlock()
	return !a.authz.current[configfile.DeviceKey(device)]
}

// usable reports whether a device may take part in calls: enabled and
// enrolled in the configuration file, and eligible.
func (a *App) usable(table *routing.Table, device string) bool {
	d, ok := table.Device(device)
	return device != "" && ok && d.Enabled && d.Enrolled && a.eligible(device)
}

// errForeignCertificate: a client certificate this clearinghouse did not
// issue (an OSP site may then still know the gateway by its address).
var errForeignCertificate = errors.New("not issued by this clearinghouse")

// identifyByCertificate finds the device a TLS client certificate was
// issued to: it must be byte for byte a certificate this server issued
// (so MD5-signed legacy certificates, which Go's TLS stack cannot verify,
// are accepted exactly when they are ours), valid now and not revoked.
func (a *App) identifyByCertificate(ctx context.Context, cert *x509.Certificate) (device, profile string, err error) {
	serial := cert.SerialNumber.Text(16)
	key := ca.FingerprintHex(cert.Raw)
	a.authz.identMu.RLock()
	id, hit := a.authz.idents[key]
	a.authz.identMu.RUnlock()
	var rec *ca.Record
	if _, err := ca.NormalizeSerial(serial); err != nil && !hit {
		// a serial no CA of ours gives (zero, negative, over 32 bytes)
		return "", "", fmt.Errorf("client certificate %s was %w", serial, errForeignCertificate)
	}
	if !hit {
		for p, c := range a.cas {
			r, err := c.Lookup(ctx, serial)
			if errors.Is(err, ca.ErrNotFound) {
				continue
			}
			if err != nil {
				// not known to be foreign: never passed by its address
				return "", p, fmt.Errorf("client certificate %s: %v", serial, err)
			}
			if string(r.DER) == string(cert.Raw) {
				rec, id = r, identity{device: r.Device, profile: p, serial: serial}
				break
			}
		}
		if rec == nil {
			return "", "", fmt.Errorf("client certificate %s was %w", serial, errForeignCertificate)
		}
	}
	// TLS checks no validity period with client_auth mode request (the
	// legacy profile's MD5 certificates need it)
	if now := a.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", id.profile, fmt.Errorf("client certificate %s is valid from %s to %s, not now", serial,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if (rec != nil && rec.Revoked) || a.serialRevoked(id.profile, id.serial) {
		return "", id.profile, fmt.Errorf("certificate %s of %s is revoked", id.serial, id.device)
	}
	if hit {
		return id.device, id.profile, nil
	}
	a.followReenrollment(ctx, id.profile, id.device, serial)
	a.authz.identMu.Lock()
	if a.authz.idents == nil || len(a.authz.idents) >= maxCachedIdentities {
		a.authz.idents = make(map[string]identity)
	}
	a.authz.idents[key] = id
	a.authz.identMu.Unlock()
	return id.device, id.profile, nil
}

// followReenrollment is called when a device presents, for the first time
// here, a good certificate of ours while its current certificate counts as
// revoked: it may have enrolled again through another instance sharing the
// storage since (which the next refresh would find). Its record is read
// now, so that the certificate that record names is good here at once, as
// on the instance that issued it. One storage read, only in that case.
func (a *App) followReenrollment(ctx context.Context, profile, device, serial string) {
	name := configfile.DeviceKey(device)
	a.authz.mu.RLock()
	flagged := a.authz.current[name]
	a.authz.mu.RUnlock()
	if !flagged {
		return
	}
	rec, err := a.readDeviceRecord(ctx, a.fileName(device))
	if err != nil || rec == nil || rec.Profile != profile || !strings.EqualFold(rec.Serial, serial) {
		return
	}
	a.noteRevoked(profile, name, nil, false) // the next refresh checks it again
}
