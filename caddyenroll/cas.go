package caddyenroll

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// openCAs opens the CA of each profile configured: modern always (a
// profile without settings, such as "legacy": null, has the defaults).
func (a *App) openCAs(ctx context.Context) error {
	if a.Authorities == nil {
		a.Authorities = make(map[string]*Authority)
	}
	for _, profile := range []string{profileModern, profileLegacy} {
		if auth, named := a.Authorities[profile]; auth == nil && (named || profile == profileModern) {
			a.Authorities[profile] = new(Authority)
		}
	}
	a.cas = make(map[string]*ca.CA)
	a.crypto = new(cryptoRecords)
	// the modern CA first: it decides whether the file's crypto item was absent
	for _, profile := range []string{profileModern, profileLegacy} {
		auth := a.Authorities[profile]
		if auth == nil {
			continue
		}
		if err := a.openCA(ctx, profile, auth); err != nil {
			return fmt.Errorf("operational CA %q: %v", profile, err)
		}
	}
	return nil
}

// openCA opens (or creates) the CA of a profile. When the file's crypto
// item does not name it yet, the file is edited once the config started (recordCrypto),
// not here: `caddy validate` provisions too, and must not touch the file.
// The crypto item lists one entry per profile, separated by spaces (as
// recordCrypto writes it), commas or semicolons, each as the ca package
// writes it.
func (a *App) openCA(ctx context.Context, profile string, auth *Authority) error {
	var cryptoItem string
	var hadCrypto bool
	a.cfg.read(func(f *configfile.File) {
		cryptoItem, hadCrypto = f.Crypto, f.HasCrypto
	})
	entries := cryptoEntries(cryptoItem)
	param, ours := entries[profile], len(entries) > 0
	cfg := auth.config(profile)
	// instances starting together on an item that names no CA: one
	// generates, the others adopt its CA, named in the file or not yet
	// (recordCrypto names it under the same storage lock)
	cfg.Named = func(context.Context) (string, error) {
		item, err := a.cfg.cryptoOnDisk()
		return cryptoEntries(item)[profile], err
	}
	c, res, err := ca.Open(ctx, a.storage, cfg, param)
	if err != nil {
		return err
	}
	a.cas[profile] = c
	if unapplied := auth.unappliedSettings(c); !res.Created && len(unapplied) > 0 {
		a.log.Warn("settings of a generated CA differ from the CA in use, which the configuration file's crypto item names: they apply only when a CA is generated (README: Renewing the operational CA)",
			zap.String("profile", profile), zap.Strings("settings", unapplied), zap.String("crypto", c.CryptoParam()))
	}
	if c.Profile() == ca.Profile(profileLegacy) {
		a.log.Warn("legacy CA profile enabled: device certificates are signed with MD5-RSA for seed-era clients; MD5 is broken, keep this profile to the devices that need it",
			zap.String("crypto", c.CryptoParam()))
	}
	if param == res.CryptoParam {
		return nil
	}
	// The seed: when the crypto item is absent the server generates new
	// parameters and every enrolled device must re-enroll. A value that is
	// present but not ours (a file imported from another clearinghouse, or
	// Table 7's placeholder) is replaced, and its enrolled flags are kept:
	// they are the operator's statement of which devices are enrolled.
	a.crypto.pending = append(a.crypto.pending, cryptoRecord{
		authority: c, profile: profile, param: res.CryptoParam, was: param,
		clearEnrolled: !hadCrypto && res.Created, created: res.Created, adopted: res.Adopted,
		replacedForeign: hadCrypto && !ours && cryptoItem != "",
	})
	return nil
}

func isOurCryptoEntry(e string) bool {
	return strings.HasPrefix(e, profileModern+":") || strings.HasPrefix(e, profileLegacy+":")
}

// cryptoRecords are the CAs that Provision opened and the file does not
// name yet.
type cryptoRecords struct {
	mu      sync.Mutex
	pending []cryptoRecord
	// the crypto item of the version of the file in force (cryptoitem.go)
	file atomic.Pointer[fileCrypto]
}

type cryptoRecord struct {
	authority                         *ca.CA
	profile, param                    string
	was                               string // the profile's entry in the file when Provision read it
	clearEnrolled                     bool
	created, adopted, replacedForeign bool
}

// recordCrypto makes the file name the CAs in use, once: when the config
// has started (startedHandler), or before an issuance that comes first.
// It writes the file under the storage lock that instances generating a
// CA take (ca.CA.MarkNamed, the modern CA's first), so that one starting
// together with this one adopts the CA rather than generate another.
//
// If the file has named another CA of a profile since this configuration
// read it (an operator's edit, or an instance of an earlier version),
// recordCrypto refuses: this configuration will not serve a CA the file
// does not name (a reload opens the one it names).
func (a *App) recordCrypto(ctx context.Context) error {
	a.crypto.mu.Lock()
	defer a.crypto.mu.Unlock()
	if len(a.crypto.pending) == 0 {
		return nil
	}
	var cleared []string
	record := func() error { return a.cfg.edit(ctx, a.setCrypto(&cleared)) }
	for i := len(a.crypto.pending) - 1; i >= 0; i-- {
		c, inner := a.crypto.pending[i].authority, record
		record = func() error { return c.MarkNamed(ctx, inner) }
	}
	if err := record(); err != nil {
		return fmt.Errorf("recording crypto parameters in %s: %v", a.ConfigFile, err)
	}
	for _, r := range a.crypto.pending {
		a.log.Info("configuration file now names the operational CA",
			zap.String("profile", r.profile),
			zap.String("crypto", r.param),
			zap.Bool("created", r.created),
			zap.Bool("adopted_from_another_instance", r.adopted),
			zap.Bool("replaced_foreign_value", r.replacedForeign),
			zap.Int("devices_must_reenroll", len(cleared)))
	}
	a.crypto.pending = nil
	return nil
}

// setCrypto is recordCrypto's edit of the file; a.crypto.mu is held.
func (a *App) setCrypto(cleared *[]string) func(f *configfile.File) error {
	return func(f *configfile.File) error {
		entries := cryptoEntries(f.Crypto) // a value not ours is replaced
		if err := a.cryptoConflict(entries); err != nil {
			return err
		}
		clear := false
		for _, r := range a.crypto.pending {
			entries[r.profile] = r.param
			// only while no instance has recorded a CA yet: marks written
			// since then are of the new CA's certificates
			clear = clear || (r.clearEnrolled && !f.HasCrypto)
		}
		var item []string
		for _, profile := range []string{profileModern, profileLegacy} {
			if e := entries[profile]; e != "" {
				item = append(item, e)
			}
		}
		if err := f.SetCrypto(strings.Join(item, " ")); err != nil {
			return err
		}
		if clear {
			*cleared = f.ClearEnrolled()
		}
		return nil
	}
}

// cryptoConflict refuses a file whose crypto entries name another CA of a
// profile than the one this configuration opened, since it read the file;
// a.crypto.mu is held.
func (a *App) cryptoConflict(entries map[string]string) error {
	for _, r := range a.crypto.pending {
		if cur := entries[r.profile]; cur != r.was && cur != r.param {
			return fmt.Errorf("the file names the %s CA %q since this configuration was loaded (edited, or recorded by another instance sharing the storage); reload to use it", r.profile, cur)
		}
	}
	return nil
}

// checkCrypto is recordCrypto's check, without the edit: Start refuses a
// file that names another CA; the edit waits until the config started.
func (a *App) checkCrypto() error {
	a.crypto.mu.Lock()
	defer a.crypto.mu.Unlock()
	if len(a.crypto.pending) == 0 {
		return nil
	}
	item, err := a.cfg.cryptoOnDisk()
	if err == nil {
		err = a.cryptoConflict(cryptoEntries(item))
	}
	if err != nil {
		return fmt.Errorf("recording crypto parameters in %s: %v", a.ConfigFile, err)
	}
	return nil
}

// authority returns the CA of a profile.
func (a *App) authority(profile string) (*ca.CA, error) {
	c, ok := a.cas[profile]
	if !ok {
		return nil, fmt.Errorf("no %q CA is configured in the enroll app (add `ca %s` to the global enroll option; in JSON, %q to the app's authorities)", profile, profile, profile)
	}
	return c, nil
}
