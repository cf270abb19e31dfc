package caddyenroll

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// The configuration file's crypto item names the CA of each profile; a
// configuration opens those CAs at provision and keeps them until a
// reload. An edit of the item while it runs (an operator's, or another
// instance sharing the file that renewed a CA) names a CA this
// configuration does not use: it then issues nothing of that profile, nor
// marks a device enrolled with it, until a reload opens the CA the file
// names (or the file names its CA again). Certificates of the old CA
// marked in a file that names the new one would read as enrolled with it.

// cryptoEntries are the entries of a crypto item in the ca package's form,
// by profile (other values, such as Table 7's placeholder, are not),
// separated as ca.Open separates them: by spaces, commas or semicolons.
func cryptoEntries(item string) map[string]string {
	entries := map[string]string{}
	for _, e := range strings.FieldsFunc(item, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		if isOurCryptoEntry(e) {
			entries[e[:strings.IndexByte(e, ':')]] = e
		}
	}
	return entries
}

// namesOther reports whether a crypto entry names another CA than c (in
// any spelling ca.ParseCryptoParams takes: a fingerprint in capitals is
// the same CA). No entry names none.
func namesOther(entry string, c *ca.CA) bool {
	if entry == "" || entry == c.CryptoParam() {
		return false
	}
	p, err := ca.ParseCryptoParams(entry)
	return err != nil || p != c.Params()
}

// fileCrypto is what a version of the file says of the CAs.
type fileCrypto struct {
	has     bool              // the file has a crypto item
	entries map[string]string // its entries by profile
	other   map[string]bool   // the profiles whose entry names another CA than the one in use
}

func (a *App) fileCryptoOf(f *configfile.File) *fileCrypto {
	fc := &fileCrypto{has: f.HasCrypto, entries: cryptoEntries(f.Crypto), other: map[string]bool{}}
	for profile, c := range a.cas {
		if namesOther(fc.entries[profile], c) {
			fc.other[profile] = true
		}
	}
	return fc
}

// noteFileCrypto takes the crypto item of a new version of the file, and
// logs when it names another CA than a profile's in use, or none any more.
func (a *App) noteFileCrypto(f *configfile.File) {
	now := a.fileCryptoOf(f)
	prev := a.crypto.file.Swap(now)
	if prev == nil {
		return
	}
	for profile, c := range a.cas {
		// (not caNotNamed: this runs under the file's lock, which
		// recordCrypto takes holding a.crypto.mu)
		if named := now.entries[profile]; named != prev.entries[profile] && now.other[profile] {
			a.background(func() { a.warnOtherCA(profile, named, c.CryptoParam()) })
		}
	}
	if prev.has && !now.has {
		a.log.Warn("the configuration file has no crypto item any more: the next `caddy reload --force` or restart generates a new operational CA, and every device must enroll again")
		return
	}
	for profile := range a.cas {
		if now.has && prev.entries[profile] != "" && now.entries[profile] == "" {
			a.log.Warn("the configuration file's crypto item no longer names the CA of a profile: the next `caddy reload --force` or restart generates a new one for it (its devices must enroll again; their enrolled flags stay)",
				zap.String("profile", profile))
		}
	}
}

// otherCAGrace is how long a configuration waits before it reports that
// the file names another CA: the config a reload replaces sees the new
// config name its new CA moments before it is stopped.
var otherCAGrace = 5 * time.Second // a variable for tests

// warnOtherCA reports, unless this configuration is stopped or the file
// names another CA again meanwhile, that the file names another CA of the
// profile than the one in use.
func (a *App) warnOtherCA(profile, named, inUse string) {
	t := time.NewTimer(otherCAGrace)
	defer t.Stop()
	select {
	case <-a.stop:
		return
	case <-t.C:
	}
	if fc := a.crypto.file.Load(); fc == nil || fc.entries[profile] != named {
		return
	}
	a.log.Error("the configuration file names another operational CA than this server uses: it issues no certificate of the profile until a reload opens that CA (or the file names this one again)",
		zap.String("profile", profile), zap.String("file_names", named), zap.String("in_use", inUse))
}

// caNotNamed says why the CA of a profile may not issue now: the file in
// force names another CA of the profile (one that recordCrypto is about
// to replace aside). "" when it may.
func (a *App) caNotNamed(profile string) string {
	fc := a.crypto.file.Load()
	if fc == nil || !fc.other[profile] {
		return ""
	}
	named := fc.entries[profile]
	a.crypto.mu.Lock()
	defer a.crypto.mu.Unlock()
	for _, r := range a.crypto.pending {
		if r.profile == profile && named == r.was {
			return "" // the file as Provision read it: recorded before an issuance
		}
	}
	return otherCAMessage(profile, named)
}

// caNotNamedOnDisk is caNotNamed for the version of the file on disk, when
// it is not the one in force (the watcher has not seen it yet): another
// instance renewing the CA may have written it moments ago. The file is
// parsed only then; what cannot be read is the watcher's to report.
func (a *App) caNotNamedOnDisk(profile string) string {
	c := a.cas[profile]
	if c == nil || a.cfg.current() {
		return ""
	}
	item, err := a.cfg.cryptoOnDisk()
	e := cryptoEntries(item)[profile]
	if err != nil || !namesOther(e, c) {
		return ""
	}
	return otherCAMessage(profile, e)
}

func otherCAMessage(profile, named string) string {
	return fmt.Sprintf("the configuration file names the %s CA %s, not the one this server uses; reload the server", profile, named)
}
