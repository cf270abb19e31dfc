package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

func init() {
	caddy.RegisterModule(App{})
}

// Approval policies.
const (
	ApprovalAuto   = "auto"
	ApprovalManual = "manual"
)

// Policies for requests naming a device that the configuration file lacks.
const (
	UnknownPending = "pending"
	UnknownRefuse  = "refuse"
)

// App is the clearinghouse app: what every `enroll` handler of the process
// shares — the configuration file (seed 001, Table 7), the operational CAs,
// the operator accounts and the enrollment state kept in Caddy's storage.
// It plays the part Caddy's `pki` app plays for `acme_server`.
type App struct {
	// Path of the clearinghouse configuration file (groups, devices, routes
	// and the enroll/routing/cdrs/ssl flags). Required.
	ConfigFile string `json:"config_file,omitempty"`

	// How often the configuration file is checked for edits, which then take
	// effect without a restart. Default 2s; at least 10ms; a negative value
	// disables it (edits then take effect on `caddy reload`).
	WatchInterval caddy.Duration `json:"watch_interval,omitempty"`

	// Number of previous versions of the configuration file kept as
	// FILE.~1~ … FILE.~N~ when the server rewrites it: 0 (none) to 100.
	// Default 5.
	Backups *int `json:"backups,omitempty"`

	// Approval policy: "auto" (default) issues at once to a known, enabled
	// device with valid credentials; "manual" makes every request wait for
	// an administrator.
	Approval string `json:"approval,omitempty"`

	// Requests naming a device absent from the configuration file either
	// wait for an administrator ("pending", default) or are refused
	// ("refuse").
	UnknownDevices string `json:"unknown_devices,omitempty"`

	// Operator accounts allowed to enroll devices.
	Accounts []Account `json:"accounts,omitempty"`

	// The operational CAs by profile: "modern" (always present) and
	// "legacy" (MD5-RSA, for seed-era devices; only when configured). A
	// profile given as null or {} has the defaults.
	Authorities map[string]*Authority `json:"authorities,omitempty"`

	// Failed logins allowed per account and per client address before
	// lockouts start. Default 5 (also for 0); negative is refused.
	FailuresAllowed int `json:"failures_allowed,omitempty"`
	// First lockout after the allowed failures; it doubles with every
	// further failure. Default 1s; at least 1ms, at most lockout_max.
	LockoutBase caddy.Duration `json:"lockout_base,omitempty"`
	// Longest lockout. Default 15m.
	LockoutMax caddy.Duration `json:"lockout_max,omitempty"`

	// Signalling addresses of devices for OSP answers
	// (DestinationSignalAddress), by device name: "host", "host:port",
	// "[ip]:port" (port 1 to 65535). A device not listed is reached at its
	// name, port 5060. Names match the configuration file's lines in any
	// spelling of the device (case, "[ip]"), each device at most once; a
	// name the file lacks is logged as a warning and ignored.
	DeviceAddresses map[string]string `json:"device_addresses,omitempty"`

	// Destination protocols of devices for OSP answers
	// (<SignalingProtocol>), by device name, as the OSP Toolkit spells
	// them: "sip", "h323-Q931" (H.323, Setup to the device), "h323-LRQ"
	// (H.323, LRQ to the gatekeeper), "iax", "fax-T37", "fax-T38",
	// "skype", "smpp", "xmpp", "sms" (case matters: the toolkit compares
	// them exactly, and reads any other as unknown). A device not listed
	// is "sip". Names as in device_addresses.
	DeviceProtocols map[string]string `json:"device_protocols,omitempty"`

	// Devices that are not OSP devices (a PSTN gateway that cannot check
	// tokens): their destinations in OSP answers have OSP version "0.0.0",
	// which the toolkit reports as not OSP enabled, so that gateways send
	// them no token, and carry none (no signature spent on them). The
	// source cannot ask to reauthorize such a call (the toolkit sends a
	// reauthorization only with the destination's token). Names as in
	// device_addresses.
	NonOSPDevices []string `json:"non_osp_devices,omitempty"`

	// Most destinations in an OSP answer: 1 to 100. Default 10 (also for 0).
	MaxDestinations int `json:"max_destinations,omitempty"`

	// How long client nonces of enrollment requests are remembered, to
	// refuse a nonce reused with another CSR or device (status 9). A nonce
	// is kept at least this long and at most twice this long, in time
	// buckets that are pruned every hour. Default 720h (30 days); at least
	// 1h. Instances sharing a storage should use the same value. After a
	// change, nonces used under the old value stay refused until they are
	// older than the new one.
	NonceRetention caddy.Duration `json:"nonce_retention,omitempty"`

	// Most enrollment requests pending approval at once, all accounts
	// together; a new one beyond is refused with status 10 (rate limited).
	// Default 10000 (also for 0); negative is refused.
	MaxPending int `json:"max_pending,omitempty"`

	// Most enrollment requests of one account for devices not in the
	// configuration file pending approval at once (the devices of a
	// customer share its account); a new one beyond is refused with status
	// 10. Requests naming devices of the file count only toward
	// max_pending (the file bounds them: 4 pending per device). Default 100
	// (also for 0); negative is refused.
	MaxPendingPerAccount int `json:"max_pending_per_account,omitempty"`

	// Most certificates issued to one device within issuance_window without
	// an administrator. Beyond, a new key of the device waits for approval
	// (status 1) even under approval auto, and is issued when the device
	// asks again once the window allows it. Each new certificate of a
	// device revokes the previous one: this bounds how fast re-enrollment
	// grows the CRL. Default (also for 0): 5, or with short-lived
	// certificates twice the renewals a device makes in the window (one
	// every two thirds of the shortest validity) plus 3. A setting below
	// those renewals themselves is logged as a warning under approval auto
	// (it would hold ordinary renewals). Negative is refused.
	MaxIssuedPerDevice int `json:"max_issued_per_device,omitempty"`

	// The window of max_issued_per_device. Default 168h (7 days); at least
	// 1m.
	IssuanceWindow caddy.Duration `json:"issuance_window,omitempty"`

	log      *zap.Logger
	storage  certmagic.Storage
	cfg      *configState
	cas      map[string]*ca.CA
	accounts *accounts
	limiter  *limiter // per account
	// per client address: addressFailuresFactor times the failures allowed
	addrLimiter *limiter
	// the addresses accounts logged in from recently: not held off by the
	// account's lockout
	known       *knownAddresses
	knownWrites *knownWriter // records of known addresses (knownrecords.go)
	limitersKey string       // their limitersPool entry
	hashes      *hashWork    // nil: the process's (hashwork.go); tests set one
	state       *stateStore
	router      *routing.Router
	authz       *authz
	// the revocationsPool entry of authz.revocations; "" when not shared
	revocationsKey string
	crlKeys        []string // the crlPool entries of the CAs' CRLs
	marks          *markBatcher
	stop           chan struct{}
	stopOnce       *sync.Once
	bg             *backgroundWork
	clock          func() time.Time // nil: time.Now; tests set it
	// the wall clock when the app was provisioned, and the monotonic time
	// since (nil: no bound; tests that set clock set it too): janitorNow
	wallAtStart time.Time
	sinceStart  func() time.Duration
	bgCtx       context.Context
	bgCancel    context.CancelFunc
	crypto      *cryptoRecords
	// closed once the config started and the CAs are named in the file
	// (startedHandler): edits of the file wait for it (afterStarted)
	started     chan struct{}
	startedOnce *sync.Once
	// the bounds' warnings and verifications (pendingbounds.go)
	pendingThrottle *throttle
	// accounts.cache is the process's, held in credentialsPool
	credentialsHeld bool
	// the decisions' events, through Caddy's events app (events.go)
	events *notifier
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "enroll",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision loads the configuration file, the CAs and the accounts.
func (a *App) Provision(ctx caddy.Context) error {
	// background work runs under bgCtx, which Stop cancels
	a.bgCtx, a.bgCancel = context.WithCancel(ctx)
	a.log = ctx.Logger()
	a.storage = localLocks{ctx.Storage()}
	a.stop = make(chan struct{})
	a.stopOnce = new(sync.Once)
	a.bg = new(backgroundWork)
	a.knownWrites = &knownWriter{every: knownWriteEvery}
	a.authz = new(authz) // its revocations once the CAs are open
	a.marks = &markBatcher{apply: a.applyMarks}
	a.pendingThrottle = new(throttle)
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	a.setDefaults()
	if err := a.Validate(); err != nil {
		return err
	}
	if err := a.provisionLogins(); err != nil {
		return err
	}
	if a.clock == nil && a.sinceStart == nil {
		start := time.Now()
		a.wallAtStart, a.sinceStart = start.Round(0), func() time.Duration { return time.Since(start) }
	}
	a.state = newStateStore(a.storage, time.Duration(a.NonceRetention))
	if a.sinceStart != nil {
		a.state.sinceStart = a.clockSinceStart
	}
	if err := a.state.readBucketSizes(ctx); err != nil {
		// the janitor rewrites the record; until then nonces of another
		// nonce_retention are not read
		a.log.Warn("reading the nonce bucket sizes", zap.Error(err))
	}

	backups := 5
	if a.Backups != nil {
		backups = *a.Backups
	}
	var err error
	a.cfg, err = loadConfigState(a.ConfigFile, backups)
	if err != nil {
		return err // already FILE:LINE: …
	}
	a.cfg.lockFile = configFileLock(a.storage, a.ConfigFile)
	a.cfg.join() // follows the edits of the config it replaces
	a.warnUnissuable()
	a.warnUnknownAddresses()
	if err := a.openCAs(ctx); err != nil {
		return err
	}
	a.settleIssuanceBound()
	if err := a.shareRevocationState(ctx); err != nil {
		return err
	}
	// the route table follows every change of the file; installed once the
	// CAs and the revocation state that revokeDisabled uses are in place
	a.cfg.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		return fmt.Errorf("%s: route table: %v", a.ConfigFile, err)
	}
	a.followFileChanges()
	if err := a.refreshRevoked(ctx); err != nil {
		return fmt.Errorf("loading revocations: %v", err)
	}
	// the file names the CAs once the whole config runs (recordCrypto):
	// Caddy starts the apps one by one, and stops those started when a
	// later one fails, leaving the previous config running
	a.started, a.startedOnce = make(chan struct{}), new(sync.Once)
	events, err := ctx.App("events")
	if err != nil {
		return err
	}
	a.events = newNotifier(events.(*caddyevents.App), ctx, a.log)
	return events.(*caddyevents.App).On("started", startedHandler{a})
}

// setDefaults fills in the settings left out (zero).
func (a *App) setDefaults() {
	if a.Approval == "" {
		a.Approval = ApprovalAuto
	}
	if a.UnknownDevices == "" {
		a.UnknownDevices = UnknownPending
	}
	if a.WatchInterval == 0 {
		a.WatchInterval = caddy.Duration(2 * time.Second)
	}
	if a.FailuresAllowed == 0 {
		a.FailuresAllowed = 5
	}
	if a.LockoutBase == 0 {
		a.LockoutBase = caddy.Duration(time.Second)
	}
	if a.LockoutMax == 0 {
		a.LockoutMax = caddy.Duration(15 * time.Minute)
	}
	if a.NonceRetention == 0 {
		a.NonceRetention = caddy.Duration(720 * time.Hour)
	}
	if a.MaxPending == 0 {
		a.MaxPending = defaultMaxPending
	}
	if a.MaxPendingPerAccount == 0 {
		a.MaxPendingPerAccount = defaultMaxPendingPerAccount
	}
	if a.IssuanceWindow == 0 {
		a.IssuanceWindow = caddy.Duration(defaultIssuanceWindow)
	}
}

// provisionLogins checks the accounts and takes the login limiters: those
// of the config this one replaces when the settings are the same, so that
// a reload keeps the failures, lockouts and known addresses; and the
// process's valid logins checked, so that it keeps them too.
func (a *App) provisionLogins() error {
	var err error
	if a.accounts, err = newAccounts(a.Accounts); err != nil {
		return err
	}
	if err := a.shareCredentialCache(); err != nil {
		return err
	}
	if len(a.accounts.cheaper) > 0 {
		a.log.Warn("accounts whose password hash has a lower bcrypt cost than another's answer a wrong password faster than an unknown username, which tells their names; hash every password at the same cost",
			zap.Strings("accounts", a.accounts.cheaper))
	}
	a.limitersKey = fmt.Sprintf("%d %d %d", a.FailuresAllowed, a.LockoutBase, a.LockoutMax)
	v, _, err := limitersPool.LoadOrNew(a.limitersKey, func() (caddy.Destructor, error) {
		return &loginLimiters{
			account: newLimiter(a.FailuresAllowed, time.Duration(a.LockoutBase), time.Duration(a.LockoutMax)),
			address: newLimiter(addressFailuresFactor*a.FailuresAllowed, time.Duration(a.LockoutBase), time.Duration(a.LockoutMax)),
			known:   newKnownAddresses(),
		}, nil
	})
	if err != nil {
		return err
	}
	ll := v.(*loginLimiters)
	a.limiter, a.addrLimiter, a.known = ll.account, ll.address, ll.known
	return nil
}

// warnUnissuable warns of the file's devices whose names no certificate
// can hold (the first maxNameWarnings of them).
func (a *App) warnUnissuable() {
	var bad []unissuable
	a.cfg.read(func(f *configfile.File) { bad = unissuableDevices(f) })
	for i, u := range bad {
		if i == maxNameWarnings {
			a.log.Warn("more devices cannot enroll (`caddy enroll check` lists them)", zap.Int("count", len(bad)-i))
			break
		}
		a.log.Warn("device cannot enroll: its name cannot be in a certificate", zap.String("file", a.ConfigFile),
			zap.Int("line", u.device.Line), zap.String("device", u.device.Name), zap.Error(u.err))
	}
}

// warnUnknownAddresses warns of device_address, device_protocol and
// non_osp_device names the file lacks. Routing ignores them: a typo, or a
// device the operator removed from the file (which is edited while the
// server runs: a reload must not fail for it).
func (a *App) warnUnknownAddresses() {
	for _, s := range []struct {
		option string
		names  []string
	}{
		{"device_address", slices.Collect(maps.Keys(a.DeviceAddresses))},
		{"device_protocol", slices.Collect(maps.Keys(a.DeviceProtocols))},
		{"non_osp_device", a.NonOSPDevices},
	} {
		var strangers []string
		a.cfg.read(func(f *configfile.File) {
			for _, name := range s.names {
				if _, ok := f.Device(name); !ok {
					strangers = append(strangers, name)
				}
			}
		})
		if len(strangers) > 0 {
			slices.Sort(strangers)
			a.log.Warn(s.option+" names devices the configuration file lacks; ignored",
				zap.Strings("devices", strangers), zap.String("file", a.ConfigFile))
		}
	}
}

// shareRevocationState takes the revocation state and the CRLs served from
// the config this one replaces, when it used the same storage and CAs: the
// refresh then reads only what changed, and a revocation that the previous
// config's last requests make drops what this one serves.
func (a *App) shareRevocationState(ctx caddy.Context) error {
	// each CA alone, on this storage
	caKeys := make(map[string]string, len(a.cas))
	for profile, c := range a.cas {
		if key := revocationsKey(ctx.Storage(), map[string]*ca.CA{profile: c}); key != "" {
			caKeys[profile] = key
		}
	}
	// the whole state with the same CAs (with other CAs, noteRevoked
	// reaches it through caKeys)
	a.authz.revocations = new(revocations)
	if key := revocationsKey(ctx.Storage(), a.cas); key != "" {
		v, loaded, err := revocationsPool.LoadOrNew(key, func() (caddy.Destructor, error) { return &revocations{caKeys: caKeys}, nil })
		if err != nil {
			return err
		}
		a.revocationsKey = key
		a.authz.revocations = v.(*revocations)
		a.log.Debug("revocation state", zap.Bool("kept_from_previous_config", loaded))
	}
	// and the CRLs served, CA by CA
	for profile, c := range a.cas {
		key := caKeys[profile]
		if key == "" {
			continue
		}
		v, _, err := crlPool.LoadOrNew(key, func() (caddy.Destructor, error) { return sharedCRL{ca.NewCRLCache()}, nil })
		if err != nil {
			return err
		}
		a.crlKeys = append(a.crlKeys, key)
		c.ShareCRLCache(v.(sharedCRL).CRLCache)
	}
	return nil
}

// startedHandler records the CAs in the file (recordCrypto) when Caddy
// says the config started: every app of it did.
type startedHandler struct{ a *App }

// Handle implements caddyevents.Handler.
func (h startedHandler) Handle(_ context.Context, e caddy.Event) error {
	if e.Origin() != nil { // Caddy's own event has none
		return nil
	}
	if err := h.a.recordCrypto(h.a.bgCtx); err != nil {
		// issuance records them first, and refuses while it cannot
		h.a.log.Error("naming the operational CA in the configuration file", zap.Error(err))
	}
	h.a.startedOnce.Do(func() { close(h.a.started) })
	return nil
}

// afterStarted runs f in the background once the config has started and
// the file names the CAs (startedHandler): the record of a new CA clears
// the file's enrolled flags, which the edits f makes must come after.
func (a *App) afterStarted(f func()) {
	a.background(func() {
		select {
		case <-a.started:
			f()
		case <-a.bgCtx.Done(): // stopped: the config never started
		}
	})
}

// Cleanup lets go of what this configuration shared with the others of the
// process (the configuration file's state, the login limiters, the valid
// logins checked, the CRL caches and the revocation state) and cancels its
// background work.
func (a *App) Cleanup() error {
	if a.bgCancel != nil {
		a.bgCancel()
	}
	if a.cfg != nil {
		a.cfg.leave()
	}
	if a.limitersKey != "" {
		_, _ = limitersPool.Delete(a.limitersKey)
	}
	if a.credentialsHeld {
		_, _ = credentialsPool.Delete(credentialsPoolKey)
	}
	for _, key := range a.crlKeys {
		_, _ = crlPool.Delete(key)
	}
	if a.revocationsKey == "" {
		return nil
	}
	_, err := revocationsPool.Delete(a.revocationsKey)
	return err
}

// Validate checks the settings.
func (a *App) Validate() error {
	if a.ConfigFile == "" {
		return errors.New("config_file is required: the path of the clearinghouse configuration file")
	}
	switch a.Approval {
	case ApprovalAuto, ApprovalManual:
	default:
		return fmt.Errorf("approval must be %q or %q, not %q", ApprovalAuto, ApprovalManual, a.Approval)
	}
	switch a.UnknownDevices {
	case UnknownPending, UnknownRefuse:
	default:
		return fmt.Errorf("unknown_devices must be %q or %q, not %q", UnknownPending, UnknownRefuse, a.UnknownDevices)
	}
	for profile, auth := range a.Authorities {
		if profile != profileModern && profile != profileLegacy {
			return fmt.Errorf("authorities: unknown profile %q (want %q or %q)", profile, profileModern, profileLegacy)
		}
		if auth != nil {
			if err := auth.validate(profile); err != nil {
				return fmt.Errorf("authorities %q: %v", profile, err)
			}
		}
	}
	if a.FailuresAllowed < 0 {
		return fmt.Errorf("failures_allowed must not be negative (0 means the default, 5), not %d", a.FailuresAllowed)
	}
	if a.LockoutBase < 0 || a.LockoutMax < 0 {
		return fmt.Errorf("lockout durations (lockout_base, lockout_max) must not be negative, not %v and %v", time.Duration(a.LockoutBase), time.Duration(a.LockoutMax))
	}
	if a.LockoutBase < caddy.Duration(time.Millisecond) {
		return fmt.Errorf("lockout_base must be at least 1ms, not %v%s", time.Duration(a.LockoutBase), jsonNanoseconds)
	}
	if a.LockoutBase > a.LockoutMax {
		return fmt.Errorf("lockout: the first lockout (lockout_base, %v) must not be longer than the longest (lockout_max, %v)",
			time.Duration(a.LockoutBase), time.Duration(a.LockoutMax))
	}
	spelled := make(map[string]string, len(a.DeviceAddresses))
	for _, name := range slices.Sorted(maps.Keys(a.DeviceAddresses)) {
		if name == "" {
			return errors.New("device_address: empty device name")
		}
		if _, err := routing.ParseSignalAddress(a.DeviceAddresses[name]); err != nil {
			return fmt.Errorf("device_address %s: %v", name, err)
		}
		// names match the file's lines in any spelling: two spellings of
		// one device would give it either address
		if other, dup := spelled[configfile.DeviceKey(name)]; dup {
			return fmt.Errorf("device_address names one device twice: %s and %s", other, name)
		}
		spelled[configfile.DeviceKey(name)] = name
	}
	if err := a.validateDestinations(); err != nil {
		return err
	}
	if a.MaxDestinations < 0 || a.MaxDestinations > 100 {
		return fmt.Errorf("max_destinations must be between 0 and 100, not %d", a.MaxDestinations)
	}
	if a.Backups != nil && (*a.Backups < 0 || *a.Backups > 100) {
		return fmt.Errorf("backups must be between 0 and 100, not %d", *a.Backups)
	}
	if a.WatchInterval > 0 && a.WatchInterval < caddy.Duration(minWatchInterval) {
		return fmt.Errorf("watch_interval must be at least %v (negative: only on reload), not %v%s", minWatchInterval, time.Duration(a.WatchInterval), jsonNanoseconds)
	}
	if a.MaxPending < 0 || a.MaxPendingPerAccount < 0 {
		return fmt.Errorf("max_pending and max_pending_per_account must not be negative (0 means the default, %d and %d), not %d and %d",
			defaultMaxPending, defaultMaxPendingPerAccount, a.MaxPending, a.MaxPendingPerAccount)
	}
	if a.MaxIssuedPerDevice < 0 {
		return fmt.Errorf("max_issued_per_device must not be negative (0 means the default, %d), not %d", defaultMaxIssuedPerDevice, a.MaxIssuedPerDevice)
	}
	if a.IssuanceWindow != 0 && a.IssuanceWindow < caddy.Duration(minIssuanceWindow) {
		hint := ""
		if a.IssuanceWindow > 0 && a.IssuanceWindow < caddy.Duration(time.Millisecond) {
			hint = jsonNanoseconds
		}
		return fmt.Errorf("issuance_window must be at least %v, not %v%s", minIssuanceWindow, time.Duration(a.IssuanceWindow), hint)
	}
	if a.NonceRetention < caddy.Duration(time.Hour) {
		return fmt.Errorf("nonce_retention must be at least 1h (nonces are remembered that long to refuse reuse), not %v", time.Duration(a.NonceRetention))
	}
	return nil
}

// minWatchInterval bounds how often the configuration file is checked.
const minWatchInterval = 10 * time.Millisecond

// jsonNanoseconds ends the errors of durations too short to be meant: a
// JSON number (`"watch_interval": 2`) is nanoseconds.
const jsonNanoseconds = ` (a number in JSON is nanoseconds: write a duration such as "2s")`

// Start refuses a file that names another CA than the ones Provision opened
// (checkCrypto; the file is edited to name them once every app of the
// config started: startedHandler). It warns of a CA that ends soon (then
// daily), and starts the background work: counting and indexing the
// pending requests (storage may be large), moving the call detail records
// of the first versions into day buckets, watching the file (or, when it
// is not watched, applying the marks kept in storage once), re-reading the
// revocations, revoking what devices disabled meanwhile still hold, and
// the nonce, request and failed-login janitors.
func (a *App) Start() error {
	if err := a.checkCrypto(); err != nil {
		return err
	}
	a.checkCAExpiry()
	a.startNotifier()
	a.background(func() { a.every(caExpiryCheckInterval, a.checkCAExpiry) })
	a.background(func() {
		// the markers first (one listing): the total bound counts from it
		if n, err := a.state.pendingMarkers(a.bgCtx); err == nil {
			a.setPending(n)
		}
		if err := a.state.indexPending(a.bgCtx); err != nil {
			a.log.Error("indexing pending requests", zap.Error(err))
		} else if err := a.state.indexPendingOf(a.bgCtx); err != nil {
			a.log.Error("indexing pending requests by device", zap.Error(err))
		} else if err := a.state.indexPendingBy(a.bgCtx); err != nil {
			a.log.Error("indexing pending requests by account", zap.Error(err))
		}
		if n, err := a.migrateFlatCDRs(a.bgCtx); err != nil {
			a.log.Error("moving call detail records of the first versions into day buckets", zap.Int("moved", n), zap.Error(err))
		} else if n > 0 {
			a.log.Info("call detail records of the first versions moved into day buckets", zap.Int("moved", n))
		}
		if reqs, err := a.state.requests(a.bgCtx, statePending); err == nil {
			a.setPending(len(reqs))
		}
	})
	marksDeferred.Store(true) // maybe left by an earlier run
	if a.WatchInterval > 0 {
		a.afterStarted(func() { a.every(time.Duration(a.WatchInterval), a.watchOnce) }) // applies them
	} else {
		a.afterStarted(a.applyKeptMarks) // (it left marksDeferred set)
	}
	a.background(func() { a.every(revokedRefreshInterval, a.refreshOnce) })
	a.afterStarted(a.revokeDisabledAtStart)
	a.background(func() { a.nonceJanitor(nonceJanitorInterval) })
	a.background(func() { a.failuresJanitor(failuresJanitorInterval) })
	a.background(func() { a.requestJanitor(requestJanitorInterval) })
	return nil
}

// now is the app's clock.
func (a *App) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}

// janitorNow is the time the janitors of failed-login records, records of
// known addresses and decided requests prune by: the app's clock, but never
// later than the wall clock at Provision plus the monotonic time since. A
// step of the wall clock forward (an NTP correction, a mistake) while the
// app runs must not make them delete what is still live: a failure record
// whose lockout the other instances enforce (they take its deletion for an
// unlock), an issued request whose certificate has not expired. A step
// back is taken as it is (they delete later). A clock that was behind at
// Provision and corrected forward since prunes late, by the correction,
// until the next config.
func (a *App) janitorNow() time.Time {
	now := a.now()
	if a.sinceStart == nil {
		return now
	}
	if bound := a.clockSinceStart(); bound.Before(now) {
		return bound
	}
	return now
}

// clockSinceStart is the wall clock at Provision plus the monotonic time
// since: the time a step of the wall clock does not move (sinceStart set).
func (a *App) clockSinceStart() time.Time { return a.wallAtStart.Add(a.sinceStart()) }

// stopWait bounds how long Stop waits for background work to end.
const stopWait = 5 * time.Second

// Stop stops the watcher, the revocation refresh and the janitors, and
// waits (up to stopWait) for background work to end, so that a stopped
// config no longer writes to the storage.
func (a *App) Stop() error {
	a.stopOnce.Do(func() { close(a.stop) })
	a.bgCancel() // interrupts storage calls and lock waits in progress
	a.bg.mu.Lock()
	a.bg.stopping = true
	a.bg.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.bg.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Warn("background work still running after stop", zap.Duration("waited", stopWait))
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
