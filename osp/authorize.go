package osp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Defaults of Authorize and Reauthorize.
const (
	// DefaultTokenValidity is how long a token is valid after it is
	// issued when the caller passes 0: long enough for the source device
	// to try its destinations, short enough that a captured token is
	// soon worthless.
	DefaultTokenValidity = 60 * time.Second
	// MaxTokenValidity bounds the validity a caller may ask for.
	MaxTokenValidity = 24 * time.Hour
	// TokenBackdate sets ValidAfter before the issue time, so that a
	// device whose clock is a little behind accepts the token at once.
	TokenBackdate = time.Minute
	// DefaultMaxDuration is the call time limit written when a
	// Destination gives none (the toolkit test server's 14400 s).
	DefaultMaxDuration = 4 * time.Hour
	// DefaultProtocol and DefaultOSPVersion fill a Destination's empty
	// Protocol and OSPVersion.
	DefaultProtocol   = ProtocolSIP
	DefaultOSPVersion = "2.1.1"
	// OSPVersionDisabled is the <OSPVersion> that tells the toolkit the
	// destination is not an OSP device (DEST_OSP_DIABLED, src/ospdest.c):
	// OSPPTransactionIsDestOSPEnabled then says OSPC_DOSP_FALSE, and the
	// gateways send such a destination no token. Any other non-empty
	// value is OSPC_DOSP_TRUE.
	OSPVersionDisabled = "0.0.0"
	// MaxValueBytes is the longest element value the toolkit takes: it
	// copies each into char buffer[4096] with no bounds check
	// (OSPC_XMLDOC_ITEMSIZE, src/ospxmlparse.c and OSPPXMLUnescape in
	// src/ospxmlutil.c), so a longer one overflows the gateway's stack.
	// The answers' other values stay far below it (numbers MaxNumber,
	// signal addresses MaxSignalAddress, CallId MaxCallIDBytes in
	// base64); the token, whose size grows with the call id, numbers and
	// signer certificate, is checked against MaxTokenBase64.
	MaxValueBytes = 4095
	// MaxTokenBase64 is the longest token, in base64, an answer carries:
	// less than MaxValueBytes by the header name Asterisk writes before it.
	// Its OSPLookup/OSPNext put "P-OSP-Auth-Token: " and the token into
	// char buffer[OSP_SIZE_TOKSTR] (4096, apps/app_osplookup.c) with
	// snprintf, which cuts a longer token short: the SIP header would
	// carry a broken token and the terminating gateway refuse the call.
	MaxTokenBase64 = MaxValueBytes - len("P-OSP-Auth-Token: ")
)

// The destination protocols (<SignalingProtocol>) the OSP Toolkit knows,
// spelled as its OSPV_PROTNAME_DESCS (src/ospdest.c) writes them: it
// compares them case-sensitively (OSPPMsgDescGetPart, strcmp), and any
// other value is OSPC_PROTNAME_UNKNOWN to the gateway.
const (
	ProtocolSIP      = "sip"
	ProtocolH323Q931 = "h323-Q931" // H.323, send Setup to complete the call
	ProtocolH323LRQ  = "h323-LRQ"  // H.323, send an LRQ to the gatekeeper
	ProtocolIAX      = "iax"
	ProtocolFaxT37   = "fax-T37"
	ProtocolFaxT38   = "fax-T38"
	ProtocolSkype    = "skype"
	ProtocolSMPP     = "smpp"
	ProtocolXMPP     = "xmpp"
	ProtocolSMS      = "sms"
)

// ServiceVoice is the voice service, which answers name for destinations
// without a token (Destination.NonOSP).
const ServiceVoice ServiceType = "voice"

// protocols is the toolkit's list, in its order.
var protocols = [...]string{ProtocolSIP, ProtocolH323Q931, ProtocolH323LRQ, ProtocolIAX,
	ProtocolFaxT37, ProtocolFaxT38, ProtocolSkype, ProtocolSMPP, ProtocolXMPP, ProtocolSMS}

// Protocols returns the destination protocols the toolkit knows, in its
// order (a fresh slice).
func Protocols() []string { return append([]string(nil), protocols[:]...) }

// ValidProtocol tells whether p is a destination protocol the toolkit
// knows, exactly as it spells it ("h323-Q931", not "H323-q931").
func ValidProtocol(p string) bool {
	_, ok := CanonicalProtocol(p)
	return ok
}

// CanonicalProtocol returns this package's string for p, one per protocol
// (tables holding it then share it), and whether the toolkit knows p as
// ValidProtocol says.
func CanonicalProtocol(p string) (string, bool) {
	for _, q := range protocols {
		if p == q {
			return q, true
		}
	}
	return "", false
}

// ErrTokenTooLarge refuses a token whose base64 exceeds MaxTokenBase64;
// StatusOf answers it with StatusBadRequest (the request's call id and
// numbers made it too large).
var ErrTokenTooLarge = errors.New("osp: token too large for the OSP Toolkit")

// Destination is a route the server chose for a call.
type Destination struct {
	// SignalAddress is where the source sends the call: "[1.2.3.4]:5060",
	// "1.2.3.4:5060" or "host:port" (written normalised, IP addresses in
	// brackets, as the toolkit expects).
	SignalAddress string
	// Device identifies the terminating device or trunk group; written as
	// <DestinationAlternate type="network"> in the token (the terminating
	// side's toolkit reports it in its usage) and in the destination (the
	// source's toolkit hands it to the application and reports it), there
	// only when it can stand unescaped in a SIP URI parameter, as gateways
	// put it (sourceNetworkID). Empty: not written.
	Device string
	// CalledNumber replaces the requested called number at this
	// destination (number translation); empty keeps it.
	CalledNumber string
	// Protocol is the destination's <SignalingProtocol>, one of
	// Protocols(); DefaultProtocol ("sip") when empty.
	Protocol    string
	OSPVersion  string        // "2.1.1" when empty
	MaxDuration time.Duration // call time limit; DefaultMaxDuration when 0
	// NonOSP says the destination is not an OSP device (a PSTN gateway
	// that cannot check tokens): its <OSPVersion> is OSPVersionDisabled
	// and Authorize gives it no token, as the gateways would not send one
	// (no signature spent on it). Its UsageDetail then names the service
	// ("voice" when the request named none): the toolkit hands a
	// destination without token to the application only for a known
	// service (OSPPTransactionGetDestination), else OSPC_ERR_TRAN_TOKEN_INVALID.
	// The source cannot reauthorize such a call (the toolkit sends a
	// reauthorization only with the destination's token); Reauthorize,
	// which the toolkit refuses without a token, still gives one.
	NonOSP bool
}

// NewTransactionID returns a random, non-zero 63-bit transaction id (63
// bits so that devices printing it as a signed 64-bit number never see a
// negative one). Collisions are negligible: 2^-63 per pair.
func NewTransactionID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		if id := binary.BigEndian.Uint64(b[:]) &^ (1 << 63); id != 0 {
			return id
		}
	}
}

// randomAttr is the value of the random attribute of <Message> and
// <TokenInfo>: it makes otherwise identical messages and tokens differ and
// carries no security.
func randomAttr() string { return strconv.FormatUint(uint64(mrand.Uint32()), 10) }

// Authorize answers req with one destination per dests entry, at most
// req.MaxDestinations when it is set. Each destination has its own token,
// a TokenInfo with:
//   - the calling and called numbers;
//   - the destination's signal address (and Device);
//   - the call id;
//   - ValidAfter = now − TokenBackdate and ValidUntil = now + validity
//     (DefaultTokenValidity when 0);
//   - the authorisation's transaction id: one fresh id per response, the
//     same in the response and all its tokens, as the toolkit reports it
//     back in usage indications from both ends of the call;
//   - the call time limit.
//
// A nil signer issues unsigned tokens; otherwise they are signed.
//
// Destination i carries req.CallIDs[i] when the request has that many call
// ids (the toolkit may send one per destination), else req.CallIDs[0].
//
// The request's number portability data (req.NumberPortability: routing
// number, CIC, npdi) and operator names (req.OperatorNames: spid, ocn,
// mcc…) are echoed in every destination, where the toolkit's
// OSPPTransactionGetNumberPortabilityParameters and
// OSPPTransactionGetOperatorName find them. The number portability data is
// also in every token, before the called number, so that a reauthorization
// routes as the authorization did (operator names are not: they do not
// route the call, and the token stays small). The tokens' called number stays the dialed
// one, which the terminating gateway compares with the call's. Which
// destinations a routing number leads to is the caller's choice of dests.
//
// Problems of the request are answered, not returned: a query service
// (req.IsQuery: number portability, caller name or STIR query) gets 501;
// an unusable calling number (longer than MaxNumber, control characters)
// 428; an unusable called number (empty included), routing number or CIC
// 489; no destination 404. An empty calling number, a call without caller
// id, is routed, its tokens carrying an empty SourceInfo.
//
// An error means no answer was built. Either a token is longer than the
// toolkit takes (ErrTokenTooLarge: the request's call id and numbers with
// the signer's certificate), or the server failed (bad destination
// configuration, signing failure). Then answer the request with
// Refuse(req, StatusOf(err), now): 400 and 500.
func Authorize(req *AuthorizationRequest, dests []Destination, signer *TokenSigner, now time.Time, validity time.Duration) (*AuthorisationResponse, error) {
	return AuthorizeTransaction(req, dests, signer, now, validity, nil)
}

// AuthorizeTransaction is Authorize with a transaction id made by ids
// (NewTransactionID's when ids is nil). Pass ids.For(source) to name the
// requesting device in the id: reauthorizations and usage are then checked
// against it.
func AuthorizeTransaction(req *AuthorizationRequest, dests []Destination, signer *TokenSigner, now time.Time, validity time.Duration, ids *TransactionIDs) (*AuthorisationResponse, error) {
	if req == nil {
		return nil, errors.New("osp: Authorize: nil request")
	}
	validity, err := tokenValidity("Authorize", validity)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	rsp := &AuthorisationResponse{
		MessageID:   req.MessageID,
		Random:      randomAttr(),
		ComponentID: req.ComponentID,
		Timestamp:   now,
	}
	if req.IsQuery() {
		return rsp.refusedWith(StatusUnimplemented), nil
	}
	calling, called := req.Calling(), req.Called()
	if st, ok := numbersStatus(calling, called); !ok {
		return rsp.refusedWith(st), nil
	}
	np := req.NumberPortability()
	if !np.valid() {
		return rsp.refusedWith(StatusDestinationInvalid), nil
	}
	if req.MaxDestinations > 0 && len(dests) > req.MaxDestinations {
		dests = dests[:req.MaxDestinations]
	}
	if len(dests) == 0 {
		return rsp.refusedWith(StatusNoRoute), nil
	}
	tx := ids.New()
	ops := req.OperatorNames()
	rsp.Destinations = make([]ResponseDestination, 0, len(dests))
	for i := range dests {
		var callID []byte
		switch {
		case i < len(req.CallIDs):
			callID = req.CallIDs[i]
		case len(req.CallIDs) > 0:
			callID = req.CallIDs[0]
		}
		rd, err := issue(&dests[i], calling, called, np, callID, tx, req.Service, signer, now, validity, false)
		if err != nil {
			return nil, fmt.Errorf("osp: Authorize: destination %d: %w", i, err)
		}
		rd.OperatorNames = ops
		rsp.Destinations = append(rsp.Destinations, rd)
	}
	rsp.Status = StatusOK
	rsp.TransactionID = tx
	return rsp, nil
}

// issue builds one destination and its token: none for a destination
// that is not an OSP device unless reauth (the toolkit's
// OSPPTransactionRequestReauthorisation refuses an answer without one).
func issue(d *Destination, calling, called Info, np NumberPortability, callID []byte, tx uint64, svc ServiceType, signer *TokenSigner, now time.Time, validity time.Duration, reauth bool) (ResponseDestination, error) {
	addr, err := NormalizeSignalAddress(d.SignalAddress)
	if err != nil {
		return ResponseDestination{}, err
	}
	if d.CalledNumber != "" {
		if err := validNumber(d.CalledNumber); err != nil {
			return ResponseDestination{}, fmt.Errorf("called number %q: %w", d.CalledNumber, err)
		}
		called.Value = d.CalledNumber
	}
	if d.Device != "" {
		if err := validNumber(d.Device); err != nil {
			return ResponseDestination{}, fmt.Errorf("device %q: %w", d.Device, err)
		}
	}
	maxDur := d.MaxDuration
	if maxDur == 0 {
		maxDur = DefaultMaxDuration
	}
	if maxDur < time.Second || maxDur > maxSeconds*time.Second {
		return ResponseDestination{}, fmt.Errorf("call time limit %s outside 1s to %s", maxDur, maxSeconds*time.Second)
	}
	proto, version := d.Protocol, d.OSPVersion
	switch {
	case proto == "":
		proto = DefaultProtocol
	case !ValidProtocol(proto):
		// the gateway would read OSPC_PROTNAME_UNKNOWN and dial it as its default
		return ResponseDestination{}, fmt.Errorf("protocol %q: not one the OSP Toolkit knows (%s)", proto, strings.Join(protocols[:], ", "))
	}
	nonOSP := d.NonOSP || version == OSPVersionDisabled
	switch {
	case nonOSP:
		version = OSPVersionDisabled
	case version == "":
		version = DefaultOSPVersion
	}
	info := TokenInfo{
		Random:            randomAttr(),
		SourceInfo:        calling,
		DestinationInfo:   called,
		SignalAddress:     addr,
		NetworkID:         d.Device,
		CallID:            callID,
		NumberPortability: np,
		ValidAfter:        now.Add(-TokenBackdate),
		ValidUntil:        now.Add(validity),
		TransactionID:     tx,
		MaxDuration:       maxDur,
		Service:           svc,
	}
	var token []byte
	rspSvc := svc
	if nonOSP && !reauth {
		// the toolkit takes a destination without a token only for a
		// service it knows (OSPPTransactionGetDestination)
		if rspSvc == "" {
			rspSvc = ServiceVoice
		}
	} else {
		var err error
		if token, err = info.Encode(); err != nil {
			return ResponseDestination{}, err
		}
		if signer != nil {
			if token, err = signer.Sign(token); err != nil {
				return ResponseDestination{}, err
			}
		}
		if err := checkTokenSize(token); err != nil {
			return ResponseDestination{}, err
		}
	}
	return ResponseDestination{
		SourceInfo:        calling,
		Protocol:          proto,
		OSPVersion:        version,
		DestinationInfo:   called,
		NumberPortability: np,
		SignalAddress:     addr,
		NetworkID:         sourceNetworkID(d.Device),
		Token:             token,
		ValidAfter:        info.ValidAfter,
		ValidUntil:        info.ValidUntil,
		MaxDuration:       maxDur,
		Service:           rspSvc,
		CallID:            callID,
	}, nil
}

// Reauthorize answers req with a fresh token for the call of info. info is
// the token req carries, as Verifier.VerifyReauthorization returned it:
// issued by this server, with req's transaction id, numbers and call id,
// and not expired for too long.
//
// The new token keeps the call's transaction id (the toolkit refuses an
// answer with another one), numbers, number portability data and call id.
// It is for info's destination, never one the request names:
// dest.SignalAddress must be empty (info's is used) or the same address;
// another is an error. dest.Device defaults to info's NetworkID. dest's other fields apply as in
// Authorize. An unusable calling number in info is answered with 428 (an
// empty one, an anonymous call's, is extended); an unusable called number, number portability data or destination with
// 489. Errors are as Authorize's.
//
// Whether to extend the call at all is the caller's decision; otherwise
// answer Refuse(req, …). The caller checks that:
//   - the requester is the call's source:
//     TransactionIDs.For(requester).Issued(req.TransactionID), for an id
//     made For the source. The token proves that the call was authorized,
//     not who asks: the terminating device receives it with the call;
//   - the destination is still usable and the route still there.
//
// A terminating device built on the toolkit without OSP_ALLOW_DUP_TXN
// refuses a second token with a transaction id it already accepted
// (11480, token reuse).
func Reauthorize(req *ReauthorizationRequest, info *TokenInfo, dest Destination, signer *TokenSigner, now time.Time, validity time.Duration) (*ReauthorizationResponse, error) {
	if req == nil {
		return nil, errors.New("osp: Reauthorize: nil request")
	}
	if info == nil {
		return nil, errors.New("osp: Reauthorize: no verified token")
	}
	if info.TransactionID != req.TransactionID {
		return nil, fmt.Errorf("osp: Reauthorize: token of transaction %d for transaction %d", info.TransactionID, req.TransactionID)
	}
	validity, err := tokenValidity("Reauthorize", validity)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	rsp := &ReauthorizationResponse{
		MessageID:     req.MessageID,
		Random:        randomAttr(),
		ComponentID:   req.ComponentID,
		Timestamp:     now,
		TransactionID: req.TransactionID,
	}
	calling, called, np := info.SourceInfo, info.DestinationInfo, info.NumberPortability
	if st, ok := numbersStatus(calling, called); !ok || !np.valid() {
		if ok {
			st = StatusDestinationInvalid
		}
		rsp.Status = st
		return rsp, nil
	}
	addr, err := NormalizeSignalAddress(info.SignalAddress)
	if err != nil {
		rsp.Status = StatusDestinationInvalid
		return rsp, nil
	}
	if dest.SignalAddress != "" {
		if !SameSignalAddress(dest.SignalAddress, addr) {
			return nil, fmt.Errorf("osp: Reauthorize: destination %q is not the token's %q", dest.SignalAddress, info.SignalAddress)
		}
	}
	dest.SignalAddress = addr
	if dest.Device == "" {
		dest.Device = info.NetworkID
	}
	rd, err := issue(&dest, calling, called, np, info.CallID, req.TransactionID, info.Service, signer, now, validity, true)
	if err != nil {
		return nil, fmt.Errorf("osp: Reauthorize: %w", err)
	}
	rsp.Status = StatusOK
	rsp.Destination = &rd
	return rsp, nil
}

// tokenValidity applies the default and the bounds of a token's validity.
func tokenValidity(fn string, v time.Duration) (time.Duration, error) {
	if v == 0 {
		v = DefaultTokenValidity
	}
	if v < time.Second || v > MaxTokenValidity {
		return 0, fmt.Errorf("osp: %s: token validity %s outside 1s..%s", fn, v, MaxTokenValidity)
	}
	return v, nil
}

// checkTokenSize refuses a token whose base64 would not fit the toolkit's
// element value buffer and Asterisk's SIP header buffer.
func checkTokenSize(token []byte) error {
	if n := base64.StdEncoding.EncodedLen(len(token)); n > MaxTokenBase64 {
		return fmt.Errorf("%w: %d bytes in base64, gateways take at most %d", ErrTokenTooLarge, n, MaxTokenBase64)
	}
	return nil
}

// numbersStatus is the refusal for an unusable calling (428) or called
// (489) number; ok when both are usable. An empty calling number is
// usable: it is a call without caller id, which Asterisk, FreeSWITCH,
// OpenSIPS and Kamailio send as "" (the toolkit refuses only NULL), and
// which the terminating gateway compares with its own "" (strcmp).
func numbersStatus(calling, called Info) (Status, bool) {
	if calling.Value != "" && validNumber(calling.Value) != nil {
		return StatusCallingInvalid, false
	}
	if validNumber(called.Value) != nil {
		return StatusDestinationInvalid, false
	}
	return StatusOK, true
}
