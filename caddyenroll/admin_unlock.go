package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// unlockBody names what POST /enroll/unlock clears: an account, a client
// address, or both.
type unlockBody struct {
	Username string `json:"username,omitempty"`
	Address  string `json:"address,omitempty"`
}

// maxUnlockUsername bounds the username an unlock names.
const maxUnlockUsername = 256

// unlockAnswer says whether there was anything to clear, and what could
// not be done once something was (an unlock again is harmless).
type unlockAnswer struct {
	Account *bool  `json:"account_had_failures,omitempty"`
	Address *bool  `json:"address_had_failures,omitempty"`
	Warning string `json:"warning,omitempty"`
}

// unlock answers POST /enroll/unlock: it clears the failed logins and
// lockout of an account (also at the addresses this instance knows it at,
// at those of its record in storage, and at the client address if one is
// named) and of a client address,
// here and in storage; the other instances of a cluster drop theirs at
// the key's next attempt there once sharedRecheckInterval passed (its
// record is gone). An operator unlocks devices after fixing the password
// they retried.
func (ad *adminAPI) unlock(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return notAllowed(w, r, http.MethodPost)
	}
	var body unlockBody
	if err := readBody(r, &body); err != nil {
		return err
	}
	if body.Username == "" && body.Address == "" {
		return apiErr(http.StatusBadRequest, errors.New(`give "username", "address" or both`))
	}
	if len(body.Username) > maxUnlockUsername || strings.ContainsFunc(body.Username, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return apiErr(http.StatusBadRequest, fmt.Errorf("username: at most %d bytes without control characters", maxUnlockUsername))
	}
	var addr netip.Addr
	if body.Address != "" {
		var err error
		if addr, err = netip.ParseAddr(body.Address); err != nil {
			return apiErr(http.StatusBadRequest, fmt.Errorf("address %.80q: not an IP address", body.Address))
		}
	}
	ctx := context.WithoutCancel(r.Context()) // once begun, done
	var ans unlockAnswer
	var key string // the address's limiter key
	if addr.IsValid() {
		key = addressKey(addr.String())
	}
	if body.Username != "" {
		had, partial, err := ad.app.unlockAccount(ctx, body.Username, key)
		if err != nil {
			return apiErr(http.StatusInternalServerError, err)
		}
		ans.Account = &had
		if partial != nil {
			// the account's own failures are gone: a 500 would read as
			// nothing done
			ans.Warning = "the account's failed logins were cleared, but not all of those at its known addresses (" +
				strings.ReplaceAll(partial.Error(), "\n", "; ") + "); unlock again to clear them"
			ad.log.Warn("account unlocked in part", ad.app.accounts.logField(body.Username), zap.Bool("had_failures", had), zap.Error(partial))
		} else {
			ad.log.Info("account unlocked", ad.app.accounts.logField(body.Username), zap.Bool("had_failures", had))
		}
	}
	if addr.IsValid() {
		had, err := ad.app.unlockKey(ctx, ad.app.addrLimiter, key)
		switch {
		case err != nil && ans.Account == nil:
			return apiErr(http.StatusInternalServerError, err)
		case err != nil:
			// the account was unlocked: a 500 would read as nothing done
			ans.Warning = strings.TrimPrefix(ans.Warning+"; ", "; ") + "the client address's failed logins were not cleared (" +
				err.Error() + "); unlock it again to clear them"
			ad.log.Warn("client address not unlocked", zap.String("address", strings.TrimPrefix(key, "ip:")), zap.Error(err))
		default:
			ans.Address = &had
			ad.log.Info("client address unlocked", zap.String("address", strings.TrimPrefix(key, "ip:")), zap.Bool("had_failures", had))
		}
	}
	return writeJSON(w, ans)
}

// unlockAccount clears username's failures and lockout, and those of the
// account at the addresses this instance knows it at, at those of its
// record of known addresses in storage (other instances may know it
// there) and at addrKey (if not empty): the devices locked out at their
// own address are the ones an operator unlocks. err is a failure on the
// account's own key, whose record in storage is then left. Once that key
// is cleared, the failures at its addresses are partial, each address
// still tried: an error then would read as nothing done.
func (a *App) unlockAccount(ctx context.Context, username, addrKey string) (had bool, partial, err error) {
	had, err = a.unlockKey(ctx, a.limiter, "user:"+username)
	if err != nil {
		return had, nil, err
	}
	addrs := a.known.addresses(username)
	if addrKey != "" && !slices.Contains(addrs, addrKey) {
		addrs = append(addrs, addrKey)
	}
	var failed []error
	for _, addr := range addrs {
		h, err := a.unlockKey(ctx, a.limiter, knownKey(username, addr))
		had = had || h
		if err != nil {
			failed = append(failed, fmt.Errorf("at %s: %w", strings.TrimPrefix(addr, "ip:"), err))
		}
	}
	h, err := a.unlockKnownFailures(ctx, username)
	if err != nil {
		failed = append(failed, fmt.Errorf("at the addresses of its record: %w", err))
	}
	return had || h, errors.Join(failed...), nil
}

// unlockKey clears key's failures and lockout in l and in storage, and
// reports whether there were any.
func (a *App) unlockKey(ctx context.Context, l *limiter, key string) (had bool, err error) {
	if a.state == nil {
		return l.clear(key), nil
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	// failures of key here wait (as for a valid login's deletion)
	unlock, ok := l.lockRecord(ctx, key)
	if !ok {
		return false, fmt.Errorf("waiting for the failed logins being recorded: %w", ctx.Err())
	}
	defer unlock()
	had = l.clear(key)
	f, found, err := a.state.loadFailures(ctx, key)
	if err != nil {
		return had, fmt.Errorf("reading failed logins recorded in storage: %w", err)
	}
	if found {
		had = had || f.Failures > 0
		if err := a.state.clearFailures(ctx, key); err != nil {
			return had, fmt.Errorf("clearing failed logins recorded in storage: %w", err)
		}
	}
	return had, nil
}
