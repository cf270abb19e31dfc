package caddyenroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

func init() {
	caddy.RegisterModule(OSPHandler{})
}

// Token forms.
const (
	TokensSigned   = "signed"
	TokensUnsigned = "unsigned"
	TokensCASigned = "ca_signed"
)

// OSPHandler serves call authorization over OSP (ETSI TS 101 321, XML over
// HTTP), as the OSP Toolkit inside Asterisk, OpenSIPS and Kamailio speaks
// it (seed 003): an originating device asks to authorize a call; the answer
// lists terminating devices from the route table of the configuration file,
// each with an authorization token; devices report usage afterwards.
//
// A device is identified by its TLS client certificate, which must be one
// this clearinghouse issued and has not revoked, or, where the operator
// lists it, by its source address. It must be `enabled` and `enrolled`.
//
// A call is routed on its called number, or, when the request carries a
// number portability routing number (the toolkit's
// OSPPTransactionSetNumberPortability: <DestinationInfo
// type="routingnumber">, set by a device that found the number ported), on
// that routing number: it names the switch that serves the number now,
// and the route table's patterns match it as they match called numbers.
// The routing number must be a number the route table takes (else OSP
// status 489); without a route for it the answer is 404: the dialed
// number's route leads to the network the number left. The answer and its
// tokens keep the dialed number as the called number (the terminating
// gateway compares the token's with the call's) and echo the routing
// number, CIC and npdi; a reauthorization routes on the routing number of
// the call's token, and usage records keep the three as reported.
type OSPHandler struct {
	// Token form: "signed" (default; CMS SignedData by a token key whose
	// certificate the operational CA issues, embedded: 1.4-1.7 KB),
	// "ca_signed" (CMS SignedData by the operational CA's own key, no
	// certificate embedded: under 1 KB for a typical call with a P-256 CA,
	// for the OpenSIPS and Kamailio OSP modules, which send no token over
	// 1024 bytes) or "unsigned" (plain TokenInfo XML: anyone who can reach
	// a gateway can forge one; allowed with a warning, for lab setups and
	// the toolkit's test_app). Both signed forms need a CA without an
	// intermediate.
	Tokens string `json:"tokens,omitempty"`

	// CA profile whose CA certifies the token signer: the CA the site's
	// gateways hold. Default "modern"; "legacy" for OSP Toolkit gateways
	// enrolled through the legacy profile (the signer certificate itself is
	// SHA-256 either way).
	Profile string `json:"profile,omitempty"`

	// How long a token is valid: 1s to 24h. Default 60s. Every
	// destination of an answer gets its token at once: set it to the
	// longest failover the sources take through the destinations
	// (attempts × their timeout), no longer than that.
	TokenValidity caddy.Duration `json:"token_validity,omitempty"`

	// Largest number of destinations in an answer; the request's
	// MaxDestinations lowers it. Default and most: the app's
	// max_destinations (a larger value has no effect); not negative.
	MaxDestinations int `json:"max_destinations,omitempty"`

	// Source addresses (IP) mapped to device names, for gateways that
	// cannot present a client certificate. Anyone who can send from such
	// an address acts as that device: use only on trusted networks. The
	// address is the connection's (with a proxy_protocol listener wrapper,
	// the one it carries), never X-Forwarded-For, even from trusted_proxies.
	// Each address at most once in any spelling (an IPv4-mapped address is
	// the IPv4 one), without a zone, and with a device name.
	SourceAddresses map[string]string `json:"source_addresses,omitempty"`

	// Serve OSP over plain HTTP even when the configuration file says
	// `ssl enabled` (for seed-era gateways and test_app; lab use). Without
	// it, a request that did not come over TLS is refused with OSP status
	// 420 (security problem).
	PlainHTTP bool `json:"plain_http,omitempty"`

	app      *App
	log      *zap.Logger
	refusals *logThrottle // the refusals any client can cause (logthrottle.go)
	bySource map[netip.Addr]string
	txIDs    *osp.TransactionIDs
}

// CaddyModule returns the Caddy module information.
func (OSPHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.osp",
		New: func() caddy.Module { return new(OSPHandler) },
	}
}

// Provision finds the app and checks the settings.
func (h *OSPHandler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.refusals = newLogThrottle()
	if h.Tokens == "" {
		h.Tokens = TokensSigned
	}
	if h.Profile == "" {
		h.Profile = profileModern
	}
	if h.TokenValidity == 0 {
		h.TokenValidity = caddy.Duration(osp.DefaultTokenValidity)
	}
	if err := h.Validate(); err != nil {
		return err
	}
	h.bySource, _ = sourceAddresses(h.SourceAddresses) // checked by Validate
	appIface, err := ctx.App("enroll")
	if err != nil {
		return fmt.Errorf("getting enroll app: %v", err)
	}
	h.app = appIface.(*App)
	if _, err := h.app.authority(h.Profile); err != nil {
		return err
	}
	if h.txIDs, err = h.app.transactionIDs(ctx); err != nil {
		return err
	}
	if h.Tokens == TokensUnsigned {
		h.log.Warn("OSP tokens are unsigned: anyone who can reach a gateway can forge an authorization; use only in a lab")
	} else if _, err := h.tokenSigner(ctx); errors.Is(err, errCAExpired) {
		// refusing to start would take getcacert, the CRL and every
		// other site down with it; authorizations are refused
		h.log.Error("OSP authorizations will be refused", zap.Error(err))
	} else if err != nil {
		return fmt.Errorf("token signer: %v", err)
	}
	return nil
}

// Cleanup writes the refusal lines' summaries still due while the
// config's logger writes (logthrottle.go).
func (h *OSPHandler) Cleanup() error {
	h.refusals.flush()
	return nil
}

// Validate checks the settings.
func (h *OSPHandler) Validate() error {
	if h.Tokens != TokensSigned && h.Tokens != TokensCASigned && h.Tokens != TokensUnsigned {
		return fmt.Errorf("tokens must be %q, %q or %q, not %q", TokensSigned, TokensCASigned, TokensUnsigned, h.Tokens)
	}
	if h.Profile != profileModern && h.Profile != profileLegacy {
		return fmt.Errorf("profile must be %q or %q, not %q", profileModern, profileLegacy, h.Profile)
	}
	if d := time.Duration(h.TokenValidity); d < time.Second || d > osp.MaxTokenValidity {
		hint := ""
		if d > 0 && d < time.Second {
			hint = jsonNanoseconds
		}
		return fmt.Errorf("token_validity must be between 1s and %s, not %v%s", osp.MaxTokenValidity, d, hint)
	}
	if h.MaxDestinations < 0 {
		return fmt.Errorf("max_destinations must not be negative (0 means the app's), not %d", h.MaxDestinations)
	}
	_, err := sourceAddresses(h.SourceAddresses)
	return err
}

// sourceAddresses reads source_addresses into the map identify looks up:
// by address as peerAddr reads the connection's, without a zone and an
// IPv4-mapped address as IPv4. Two spellings of one address (which would
// leave the device identified to map order) are refused, as are a zone
// (never matched: peerAddr drops it) and an empty device name.
func sourceAddresses(m map[string]string) (map[netip.Addr]string, error) {
	by := make(map[netip.Addr]string, len(m))
	spelled := make(map[netip.Addr]string, len(m))
	for _, addr := range slices.Sorted(maps.Keys(m)) {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("source_addresses: %q is not an IP address", addr)
		}
		if ip.Zone() != "" {
			return nil, fmt.Errorf("source_addresses: %q has a zone, which is never matched (the connection's address is taken without one): write %s", addr, ip.WithZone(""))
		}
		if m[addr] == "" {
			return nil, fmt.Errorf("source_addresses %s: empty device name", addr)
		}
		ip = ip.Unmap()
		if other, dup := spelled[ip]; dup {
			return nil, fmt.Errorf("source_addresses names one address twice: %s and %s", other, addr)
		}
		spelled[ip] = addr
		by[ip] = m[addr]
	}
	return by, nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *OSPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		return next.ServeHTTP(w, r)
	}
	start := time.Now()
	limit := int64(osp.DefaultLimits.MaxBytes)
	if r.ContentLength > limit {
		metrics.ospRefused.WithLabelValues("too_large").Inc()
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("OSP message of %d bytes exceeds %d", r.ContentLength, limit))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, timeBody(w, r, start), limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			metrics.ospRefused.WithLabelValues("too_large").Inc()
			return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("OSP message exceeds %d bytes", limit))
		}
		if isBodyTooSlow(err) {
			metrics.ospRefused.WithLabelValues("too_slow").Inc()
			return bodyTooSlow(w)
		}
		metrics.ospRefused.WithLabelValues("unreadable").Inc()
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading OSP message: %v", err))
	}
	now := time.Now().UTC()
	msg, err := osp.ParseRequest(body)
	if err != nil {
		metrics.ospRefused.WithLabelValues("malformed").Inc()
		refusal, rerr := osp.RefusalFor(err, now)
		if rerr != nil {
			return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("OSP message: %v", err))
		}
		h.refusals.write(h.log, "osp: malformed", zap.InfoLevel, "OSP message refused", zap.Error(err), zap.String("client", clientAddr(r)))
		return h.write(w, refusal)
	}
	if r.TLS == nil && !h.PlainHTTP && h.app.cfg.flags().SSL {
		switch m := msg.(type) {
		case *osp.UsageIndication:
			metrics.usage.WithLabelValues("ssl_required").Add(float64(len(m.Usages)))
		case *osp.AuthorizationRequest, *osp.ReauthorizationRequest:
			metrics.authz.WithLabelValues("ssl_required").Inc()
		}
		refusal, err := osp.Refuse(msg, osp.StatusSecurityProblem, now)
		if err != nil {
			return caddyhttp.Error(http.StatusForbidden, errors.New("ssl is enabled: use HTTPS"))
		}
		h.refusals.write(h.log, "osp: ssl_required", zap.InfoLevel, "OSP over plain HTTP refused: ssl is enabled", zap.String("client", clientAddr(r)))
		return h.write(w, refusal)
	}
	device, why := h.identify(r)
	var answer osp.Message
	var fields []zap.Field
	switch m := msg.(type) {
	case *osp.AuthorizationRequest:
		answer, fields = h.authorize(r.Context(), m, device, why, now)
	case *osp.UsageIndication:
		answer, fields = h.usage(r.Context(), m, device, why, now)
	case *osp.ReauthorizationRequest:
		answer, fields = h.reauthorize(r.Context(), m, device, why, now)
	case *osp.CapabilitiesIndication:
		answer, fields = h.capabilities(m, device, why, now)
	default:
		answer, err = osp.Refuse(msg, osp.StatusUnimplemented, now)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
	}
	fields = append(fields, zap.String("message", msg.Kind().String()), zap.String("device", device),
		zap.String("client", clientAddr(r)), zap.Duration("duration", time.Since(start)))
	if why != "" {
		fields = append(fields, zap.String("identification", why))
	}
	// refusals at info; answers given, which metrics count and CDRs record,
	// at debug: a log line per call costs a tenth of the throughput. The
	// refusals of a requester that is no usable device, which anyone can
	// send, are throttled (logthrottle.go).
	level, outcome := zap.DebugLevel, ""
	for _, f := range fields {
		switch f.Key {
		case "refused":
			level = zap.InfoLevel
		case "outcome":
			outcome = f.String
		}
	}
	if level == zap.InfoLevel && h.anonymousRefusal(outcome, device) {
		h.refusals.write(h.log, "osp answered: unauthorized", level, "OSP answered", fields...)
	} else if ce := h.log.Check(level, "OSP answered"); ce != nil {
		ce.Write(fields...)
	}
	return h.write(w, answer)
}

// anonymousRefusal reports whether a refusal (its outcome) is one that
// any client can cause without a certificate or a device's source
// address: a 401 to a requester that is no usable device (not identified;
// or disabled, unenrolled, revoked), whose lines the throttle may drop.
// The 401s of a usable device (a reauthorization of another device's
// transaction, a route error) take its credentials: each is logged (they
// shared the throttle's kind, and a flood from anyone dropped them).
func (h *OSPHandler) anonymousRefusal(outcome, device string) bool {
	return outcome == "unauthorized" && !h.app.usable(h.app.router.Load(), device)
}

// identify names the requesting device as the configuration file writes
// it (the certificate names it in the CA's normal form, a source_address
// as the operator wrote it), or returns why it could not.
func (h *OSPHandler) identify(r *http.Request) (device, why string) {
	why = "no client certificate and no device for this source address"
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		d, _, err := h.app.identifyByCertificate(r.Context(), r.TLS.PeerCertificates[0])
		if err == nil {
			return h.app.fileName(d), ""
		}
		if !errors.Is(err, errForeignCertificate) {
			return "", err.Error() // one of ours, expired or revoked: never passed by its address
		}
		why = err.Error() // another CA's (test_app's own): its address may still name it
	}
	if ip, ok := peerAddr(r); ok {
		if d, ok := h.bySource[ip]; ok {
			return h.app.fileName(d), ""
		}
	}
	return "", why
}

// peerAddr is the address of the connection's peer (as Caddy's remote_ip
// matcher sees it; a proxy_protocol listener wrapper puts the original
// client's there). Never X-Forwarded-For, even from trusted_proxies: any
// host behind a trusted proxy could name another gateway's address.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

func (h *OSPHandler) refuse(m osp.Message, st osp.Status, now time.Time, outcome string) (osp.Message, []zap.Field) {
	metrics.authz.WithLabelValues(outcome).Inc()
	ans, err := osp.Refuse(m, st, now)
	if err != nil {
		h.log.Error("building OSP refusal", zap.Error(err))
	}
	return ans, []zap.Field{zap.Int("status", st.Code), zap.String("outcome", outcome), zap.Bool("refused", true)}
}

// admit refuses a call request while routing is disabled, or when the
// requesting device may not take part in calls; ok means go on.
func (h *OSPHandler) admit(req osp.Message, table *routing.Table, device, why string, now time.Time) (ans osp.Message, f []zap.Field, ok bool) {
	if !h.app.cfg.flags().Routing {
		ans, f = h.refuse(req, osp.StatusServiceUnavailable, now, "routing_disabled")
		return ans, f, false
	}
	if !h.app.usable(table, device) {
		if why == "" {
			why = "device is not enabled and enrolled"
		}
		ans, f = h.refuse(req, osp.StatusUnauthorized, now, "unauthorized")
		return ans, append(f, zap.String("reason", why)), false
	}
	return nil, nil, true
}

// signer is the token signer of the site, nil for unsigned tokens.
func (h *OSPHandler) signer(ctx context.Context) (*osp.TokenSigner, error) {
	if h.Tokens == TokensUnsigned {
		return nil, nil
	}
	s, err := h.tokenSigner(ctx)
	if err != nil {
		h.log.Error("token signer", zap.Error(err))
	}
	return s, err
}

// tokenSigner is the signer of the site's signed form: the token key or
// the CA itself.
func (h *OSPHandler) tokenSigner(ctx context.Context) (*osp.TokenSigner, error) {
	if h.Tokens == TokensCASigned {
		return h.app.caTokenSigner(h.Profile)
	}
	return h.app.tokenSigner(ctx, h.Profile)
}

func (h *OSPHandler) authorize(ctx context.Context, req *osp.AuthorizationRequest, device, why string, now time.Time) (osp.Message, []zap.Field) {
	table := h.app.router.Load()
	if ans, f, ok := h.admit(req, table, device, why, now); !ok {
		return ans, f
	}
	if req.IsQuery() {
		// a number portability, caller name or STIR query: no data here to
		// answer it, and routes would be taken for the answer
		ans, f := h.refuse(req, osp.StatusUnimplemented, now, "unsupported_service")
		return ans, append(f, zap.String("service", req.Service))
	}
	max := h.MaxDestinations
	if req.MaxDestinations > 0 && (max == 0 || req.MaxDestinations < max) {
		max = req.MaxDestinations
	}
	var buf [16]routing.Destination
	np := req.NumberPortability()
	dests, err := table.Route(device, routedNumber(req.Called().Value, np), max, nil, h.app.eligible, buf[:0])
	switch {
	case err == nil, errors.Is(err, routing.ErrNoRoute), errors.Is(err, routing.ErrNoDestination):
	case errors.Is(err, routing.ErrInvalidNumber):
		ans, f := h.refuse(req, osp.StatusDestinationInvalid, now, "invalid_number")
		if np.RoutingNumber != "" {
			f = append(f, zap.String("routing_number", np.RoutingNumber))
		}
		return ans, f
	default:
		return h.refuse(req, osp.StatusUnauthorized, now, "unauthorized")
	}
	out := make([]osp.Destination, len(dests))
	for i, d := range dests {
		out[i] = ospDestination(d)
	}
	signer, err := h.signer(ctx)
	if err != nil {
		return h.refuse(req, osp.StatusInternalError, now, "error")
	}
	// the transaction id names the device asking: only it may extend the
	// call, and its usage records say whose transaction they are
	rsp, err := osp.AuthorizeTransaction(req, out, signer, now, time.Duration(h.TokenValidity), h.txIDs.For(configfile.DeviceKey(device)))
	if err != nil {
		return h.refuseErr(req, err, now, "authorizing")
	}
	if h.Tokens == TokensCASigned {
		h.warnTokenSize(rsp, now)
	}
	outcome := "authorized"
	if !rsp.Status.OK() {
		outcome = "no_route"
	}
	metrics.authz.WithLabelValues(outcome).Inc()
	metrics.dests.Add(float64(len(rsp.Destinations)))
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = d.Device
	}
	fields := []zap.Field{zap.Int("status", rsp.Status.Code), zap.String("called", req.Called().Value),
		zap.Strings("destinations", names), zap.Uint64("transaction", rsp.TransactionID)}
	if np.RoutingNumber != "" {
		fields = append(fields, zap.String("routing_number", np.RoutingNumber))
	}
	if !rsp.Status.OK() {
		fields = append(fields, zap.String("outcome", outcome), zap.Bool("refused", true))
	}
	return rsp, fields
}

// sipModuleTokenLimit is the largest token the OSP modules of OpenSIPS
// and Kamailio send: they base64-encode it into 2048 bytes with the
// toolkit's OSPPBase64Encode, which wants twice the token's size. A larger
// one leaves the gateway without its P-OSP-Auth-Token.
const sipModuleTokenLimit = 1024

// warnTokenSize warns, at most every pendingWarnInterval per profile, of
// a ca_signed token too large for those modules (a long Call-ID, an RSA
// CA): the form is chosen for them, and the call would fail at the
// terminating gateway with nothing in this server's answer to say why.
func (h *OSPHandler) warnTokenSize(rsp *osp.AuthorisationResponse, now time.Time) {
	for _, d := range rsp.Destinations {
		if len(d.Token) <= sipModuleTokenLimit {
			continue
		}
		if h.app.pendingThrottle != nil && h.app.pendingThrottle.due("token-size:"+h.Profile, now, pendingWarnInterval) {
			h.log.Warn("ca_signed token larger than the OpenSIPS/Kamailio OSP modules send: their INVITE leaves without it",
				zap.Int("bytes", len(d.Token)), zap.Int("limit", sipModuleTokenLimit), zap.String("profile", h.Profile),
				zap.Int("call_id_bytes", len(d.CallID)))
		}
		return
	}
}

// reauthorize extends a call in progress with a fresh token, for an
// enabled, enrolled device while routing is enabled. The request must carry
// a token of the call that this site issued (osp.Verifier's
// VerifyReauthorization: signed by a token signer of the site's CA or by
// the CA itself (ca_signed), or
// unsigned where the site issues unsigned tokens; the request's
// transaction id, numbers and call id; expired for at most
// osp.MaxReauthorizationDelay, 24 h: the toolkit sends the call's first
// token with every extension). The requester must be the call's source,
// as the transaction id names it (the token proves the call was
// authorized, not who asks: the terminating device receives it with the
// call); an id of an earlier version names none, and its call is extended
// for a device whose route leads to its destination, as those versions
// did. The new token is for that token's destination, never one the
// request names, and only while the requester's route for the called
// number (the routing number the token carries, for a ported number)
// still leads to it and it is usable.
func (h *OSPHandler) reauthorize(ctx context.Context, req *osp.ReauthorizationRequest, device, why string, now time.Time) (osp.Message, []zap.Field) {
	table := h.app.router.Load()
	if ans, f, ok := h.admit(req, table, device, why, now); !ok {
		return ans, f
	}
	v, err := h.verifier(now)
	if err != nil {
		h.log.Error("token verifier", zap.Error(err))
		return h.refuse(req, osp.StatusInternalError, now, "error")
	}
	info, err := v.VerifyReauthorization(req)
	if err != nil {
		ans, f := h.refuse(req, osp.StatusUnauthorized, now, "bad_token")
		return ans, append(f, zap.String("reason", err.Error()))
	}
	// the token's transaction id is the request's (checked above)
	unbound := false
	if !h.txIDs.For(configfile.DeviceKey(device)).Issued(req.TransactionID) {
		if unbound = h.txIDs.Issued(req.TransactionID); !unbound {
			ans, f := h.refuse(req, osp.StatusUnauthorized, now, "unauthorized")
			return ans, append(f, zap.String("reason", "the call's transaction is not this device's"),
				zap.Uint64("transaction", req.TransactionID))
		}
	}
	// the toolkit names no destination; another client must name the token's
	if alt := req.DestinationAddress(); alt != "" && !osp.SameSignalAddress(alt, info.SignalAddress) {
		return h.refuse(req, osp.StatusDestinationInvalid, now, "bad_destination")
	}
	targets := h.app.devicesAt(info.SignalAddress)
	if named := info.NetworkID; named != "" {
		// the device the token names, not another at its address (devices
		// may share one): a call to a device disabled since ends
		key := configfile.DeviceKey(named)
		targets = slices.DeleteFunc(slices.Clone(targets), func(d string) bool { return configfile.DeviceKey(d) != key })
	}
	if len(targets) == 0 {
		return h.refuse(req, osp.StatusDestinationInvalid, now, "bad_destination")
	}
	// the route again, with the devices at the token's address as the only
	// candidates: a route or device removed, disabled, unenrolled or revoked
	// since ends the call
	var buf [1]routing.Destination
	only := func(d string) bool { return slices.Contains(targets, d) && h.app.eligible(d) }
	dests, err := table.Route(device, routedNumber(info.DestinationInfo.Value, info.NumberPortability), 1, nil, only, buf[:0])
	if err != nil || len(dests) == 0 {
		ans, f := h.refuse(req, osp.StatusNoRoute, now, "no_route")
		return ans, append(f, zap.Strings("destination", targets))
	}
	target := dests[0].Device
	dest := ospDestination(dests[0])
	dest.SignalAddress = "" // the token's, which the device had when the call was authorized
	signer, err := h.signer(ctx)
	if err != nil {
		return h.refuse(req, osp.StatusInternalError, now, "error")
	}
	rsp, err := osp.Reauthorize(req, info, dest, signer, now, time.Duration(h.TokenValidity))
	if err != nil {
		return h.refuseErr(req, err, now, "reauthorizing")
	}
	if !rsp.Status.OK() {
		return h.refuse(req, rsp.Status, now, "bad_destination")
	}
	metrics.authz.WithLabelValues("reauthorized").Inc()
	fields := []zap.Field{zap.Uint64("transaction", req.TransactionID), zap.String("destination", target)}
	if unbound {
		fields = append(fields, zap.Bool("transaction_names_no_source", true))
	}
	return rsp, fields
}

// routedNumber is the number a call is routed on: the number portability
// routing number when the device gave one (the number is ported: the
// routing number names the switch that serves it now), else the called
// number.
func routedNumber(called string, np osp.NumberPortability) string {
	if np.RoutingNumber != "" {
		return np.RoutingNumber
	}
	return called
}

// verifier checks the tokens this site issued: signed by a token signer
// the site's CA issued directly (device certificates, clientAuth, are
// refused) or by the CA itself (ca_signed), whichever form the site signs
// now (a reload that changed the form leaves calls in progress with the
// other's tokens), and unsigned ones where the site issues those. Another
// CA's tokens of either form are refused.
func (h *OSPHandler) verifier(now time.Time) (*osp.Verifier, error) {
	c, err := h.app.authority(h.Profile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Issuer())
	return &osp.Verifier{Roots: roots, CASigners: []*x509.Certificate{c.Issuer()}, Now: func() time.Time { return now },
		AllowUnsigned: h.Tokens == TokensUnsigned}, nil
}

// refuseErr answers an error of osp.AuthorizeTransaction or
// osp.Reauthorize: a token too large for the toolkit (the request's call id
// and numbers) is the request's fault, 400; anything else is the server's,
// 500, and logged.
func (h *OSPHandler) refuseErr(m osp.Message, err error, now time.Time, doing string) (osp.Message, []zap.Field) {
	st, outcome := osp.StatusOf(err), "too_large"
	if st != osp.StatusBadRequest {
		outcome = "error"
	}
	if st == osp.StatusInternalError {
		h.log.Error(doing, zap.Error(err))
	}
	ans, f := h.refuse(m, st, now, outcome)
	return ans, append(f, zap.String("reason", err.Error()))
}

// usage stores the records of a usage indication and confirms it. The
// usage metric counts records (an indication's UsageDetail entries), by
// what became of each.
func (h *OSPHandler) usage(ctx context.Context, ind *osp.UsageIndication, device, why string, now time.Time) (osp.Message, []zap.Field) {
	records := float64(len(ind.Usages))
	if refusal, ok := h.reporter(device, why); !ok {
		metrics.usage.WithLabelValues("unauthorized").Add(records)
		return osp.ConfirmUsage(ind, osp.StatusUnauthorized, now), refusal
	}
	if !h.app.cfg.flags().CDRs {
		metrics.usage.WithLabelValues("not_stored").Add(records)
		return osp.ConfirmUsage(ind, osp.StatusOK, now), []zap.Field{zap.Bool("stored", false)}
	}
	stored, dup, foreign, others := 0, 0, 0, 0
	count := func() {
		metrics.usage.WithLabelValues("stored").Add(float64(stored))
		if dup > 0 {
			metrics.usage.WithLabelValues("duplicate").Add(float64(dup))
		}
	}
	// once begun, the indication is stored whole whether the gateway waits
	// for the confirmation or not: a hang-up is not a storage error
	ctx = context.WithoutCancel(ctx)
	for i := range ind.Usages {
		c := cdrFromUsage(&ind.Usages[i], device, now)
		issued, source := h.app.transactionSource(h.txIDs, c.TransactionID, device)
		c.TransactionIssued, c.TransactionSource = &issued, source
		if !issued {
			foreign++
		} else if source != device && source != "" && strings.EqualFold(c.Role, "source") {
			others++
		}
		ok, err := h.app.storeCDR(ctx, c)
		if err != nil {
			h.log.Error("storing CDR", zap.Error(err))
			count() // those before are stored
			metrics.usage.WithLabelValues("error").Add(float64(len(ind.Usages) - i))
			return osp.ConfirmUsage(ind, osp.StatusInternalError, now), nil
		}
		if ok {
			stored++
		} else {
			dup++
		}
	}
	count()
	f := []zap.Field{zap.Int("stored", stored)}
	if foreign > 0 {
		// stored all the same: the record is the device's word
		f = append(f, zap.Int("not_issued_here", foreign))
	}
	if others > 0 {
		// stored, marked: the record names the transaction's source
		f = append(f, zap.Int("source_of_another_devices_transaction", others))
	}
	return osp.ConfirmUsage(ind, osp.StatusOK, now), f
}

// capabilities confirms a capabilities indication to a device that may
// take part in calls, as usage: one not identified, or that the operator
// disabled, gets 401.
func (h *OSPHandler) capabilities(ind *osp.CapabilitiesIndication, device, why string, now time.Time) (osp.Message, []zap.Field) {
	if refusal, ok := h.reporter(device, why); !ok {
		return osp.ConfirmCapabilities(ind, osp.StatusUnauthorized, now), refusal
	}
	return osp.ConfirmCapabilities(ind, osp.StatusOK, now), nil
}

// reporter checks a device that reports usage or capabilities as calls
// check theirs (admit): identified (why says how it was not), enabled and
// enrolled, its certificate not revoked, whichever way it was identified.
// It returns the log fields of the 401 refusal, or ok.
func (h *OSPHandler) reporter(device, why string) (refusal []zap.Field, ok bool) {
	if device != "" {
		if h.app.usable(h.app.router.Load(), device) {
			return nil, true
		}
		why = "device is not enabled and enrolled"
	}
	return []zap.Field{zap.Int("status", osp.StatusUnauthorized.Code), zap.String("outcome", "unauthorized"),
		zap.Bool("refused", true), zap.String("reason", why)}, false
}

// write sends an OSP answer with Content-Length (the toolkit reads bodies
// by it and refuses chunked ones).
func (h *OSPHandler) write(w http.ResponseWriter, m osp.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeFixed(w, false, osp.ContentType, b)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*OSPHandler)(nil)
	_ caddy.Validator             = (*OSPHandler)(nil)
	_ caddy.CleanerUpper          = (*OSPHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*OSPHandler)(nil)
)
