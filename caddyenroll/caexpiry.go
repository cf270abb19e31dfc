package caddyenroll

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// caExpiryCheckInterval is how often the CAs' expiry is logged again.
var caExpiryCheckInterval = 24 * time.Hour // a variable for tests

// checkCAExpiry sets the CA expiry metric and tells the operator, in good
// time, that a CA ends: a WARN line once it ends before the certificates
// it issues would (they are cut to its end), an ERROR line once it has
// ended (devices cannot enroll).
func (a *App) checkCAExpiry() {
	now := a.now()
	for _, profile := range []string{profileModern, profileLegacy} {
		c, ok := a.cas[profile]
		if !ok {
			metrics.caNotAfter.DeleteLabelValues(profile)
			continue
		}
		end := caEnd(c)
		metrics.caNotAfter.WithLabelValues(profile).Set(float64(end.Unix()))
		fields := []zap.Field{zap.String("profile", profile), zap.String("crypto", c.CryptoParam()), zap.Time("not_after", end)}
		switch left := end.Sub(now); {
		case left <= 0:
			a.log.Error("operational CA has expired: devices cannot enroll; make a new CA (README: Renewing the operational CA)", fields...)
		case left < c.Validity():
			a.log.Warn("operational CA expires before the certificates it issues would: they end with it; make a new CA before then (README: Renewing the operational CA)",
				append(fields, zap.Int("days_left", int(left/(24*time.Hour))), zap.Duration("validity", c.Validity()))...)
		}
	}
}

// errCAExpired: the CA has ended and signs no token signer.
var errCAExpired = errors.New("no token can be signed")

// caExpiredLogInterval is how often a refusal for an ended CA is logged
// at ERROR again (the daily check says it too).
const caExpiredLogInterval = time.Hour

// caExpired is the reason c can sign nothing now, or "". The first refusal
// it causes is logged at ERROR, then at most every caExpiredLogInterval:
// the operator hears of it when devices start failing, not at the next
// daily check.
func (a *App) caExpired(c *ca.CA) string {
	end := caEnd(c)
	now := a.now()
	if now.Before(end) {
		return ""
	}
	if a.pendingThrottle.due("ca-expired:"+c.CryptoParam(), now, caExpiredLogInterval) {
		a.log.Error("operational CA has expired: devices cannot enroll and no call can be authorized; make a new CA (README: Renewing the operational CA)",
			zap.String("crypto", c.CryptoParam()), zap.Time("not_after", end))
	}
	return fmt.Sprintf("the operational CA expired at %s: the operator must make a new one", end.UTC().Format(time.RFC3339))
}

// caEnd is when c stops issuing usable certificates: the first end in its
// chain (the intermediate's, with one).
func caEnd(c *ca.CA) time.Time {
	chain := c.Chain()
	end := chain[0].NotAfter
	for _, ce := range chain[1:] {
		if ce.NotAfter.Before(end) {
			end = ce.NotAfter
		}
	}
	return end
}
