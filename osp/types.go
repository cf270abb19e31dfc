package osp

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Kind names an OSP component (message type).
type Kind int

// The kinds this package parses and writes.
const (
	KindUnknown Kind = iota
	KindAuthorizationRequest
	KindAuthorisationResponse
	KindUsageIndication
	KindUsageConfirmation
	KindReauthorizationRequest
	KindReauthorizationResponse
	KindCapabilitiesIndication
	KindCapabilitiesConfirmation
	KindTokenInfo
	// KindUnsupported is a component of the OSP vocabulary this package
	// does not implement (AuthorizationIndication, PricingIndication, …);
	// ParseRequest refuses it with ErrUnsupported (the handler answers
	// HTTP 400: there is no answer element for a kind it does not know).
	KindUnsupported
)

// String returns the element name this package writes for the kind.
func (k Kind) String() string {
	switch k {
	case KindAuthorizationRequest:
		return "AuthorizationRequest"
	case KindAuthorisationResponse:
		return "AuthorisationResponse"
	case KindUsageIndication:
		return "UsageIndication"
	case KindUsageConfirmation:
		return "UsageConfirmation"
	case KindReauthorizationRequest:
		return "ReauthorizationRequest"
	case KindReauthorizationResponse:
		return "ReauthorizationResponse"
	case KindCapabilitiesIndication:
		return "CapabilitiesIndication"
	case KindCapabilitiesConfirmation:
		return "CapabilitiesConfirmation"
	case KindTokenInfo:
		return "TokenInfo"
	case KindUnsupported:
		return "unsupported"
	}
	return "unknown"
}

// Answer returns the kind that answers a request kind, KindUnknown for
// other kinds.
func (k Kind) Answer() Kind {
	switch k {
	case KindAuthorizationRequest:
		return KindAuthorisationResponse
	case KindUsageIndication:
		return KindUsageConfirmation
	case KindReauthorizationRequest:
		return KindReauthorizationResponse
	case KindCapabilitiesIndication:
		return KindCapabilitiesConfirmation
	}
	return KindUnknown
}

// componentKinds maps component element names to kinds, with both
// spellings the toolkit accepts (src/ospxml.c, OSPPXMLGetDataType: "OSP
// Stds document spelling Authori(z|s)ation"). The toolkit sends
// AuthorizationRequest and ReauthorizationRequest and recognises a
// reauthorization answer only as "ReauthorizationResponse".
var componentKinds = map[string]Kind{
	"AuthorizationRequest":      KindAuthorizationRequest,
	"AuthorisationRequest":      KindAuthorizationRequest,
	"AuthorisationResponse":     KindAuthorisationResponse,
	"AuthorizationResponse":     KindAuthorisationResponse,
	"UsageIndication":           KindUsageIndication,
	"UsageConfirmation":         KindUsageConfirmation,
	"ReauthorizationRequest":    KindReauthorizationRequest,
	"ReauthorisationRequest":    KindReauthorizationRequest,
	"ReauthorizationResponse":   KindReauthorizationResponse,
	"ReauthorisationResponse":   KindReauthorizationResponse,
	"CapabilitiesIndication":    KindCapabilitiesIndication,
	"CapabilitiesConfirmation":  KindCapabilitiesConfirmation,
	"AuthorizationIndication":   KindUnsupported,
	"AuthorizationConfirmation": KindUnsupported,
	"PricingIndication":         KindUnsupported,
	"PricingConfirmation":       KindUnsupported,
}

// Info is a SourceInfo, DestinationInfo, SourceAlternate,
// DestinationAlternate or DeviceInfo element: a value and its type
// attribute (e164, sip, url, transport, network, subscriber, …).
type Info struct {
	Type  string
	Value string
}

// Frequent values of Info.Type (the toolkit's OSPV_ATYPE_DESCS).
const (
	TypeE164       = "e164"
	TypeSIP        = "sip"
	TypeURL        = "url"
	TypeH323       = "h323"
	TypeTransport  = "transport"
	TypeNetwork    = "network"
	TypeSubscriber = "subscriber"
	TypeSwitchID   = "switchId"
)

// nonNumberTypes are DestinationInfo types that qualify the called number
// (number portability, operator names) instead of being it (the toolkit's
// OSPPNPRnToElement, OSPPNPCicToElement, OSPPNPNpdiToElement,
// OSPPOperatorNameToElement).
var nonNumberTypes = map[string]bool{
	"routingnumber": true, "cic": true, "npdi": true,
	"spid": true, "altspid": true, "ocn": true, "spn": true, "altspn": true,
	"mcc": true, "mnc": true, "cnam": true, "displayname": true,
}

// firstNumber returns the first element that is a number, not a qualifier.
func firstNumber(infos []Info) (Info, bool) {
	for _, in := range infos {
		if !nonNumberTypes[in.Type] {
			return in, true
		}
	}
	return Info{}, false
}

// requireNumbers refuses a request without a calling number among its
// SourceInfo or a called number among its DestinationInfo.
func requireNumbers(source, destination []Info) error {
	if _, ok := firstNumber(source); !ok {
		return perr(ErrMissingElement, "<SourceInfo> (calling number)")
	}
	if _, ok := firstNumber(destination); !ok {
		return perr(ErrMissingElement, "<DestinationInfo> (called number)")
	}
	return nil
}

func findType(infos []Info, typ string) string {
	for _, in := range infos {
		if in.Type == typ {
			return in.Value
		}
	}
	return ""
}

// ServiceType is the type attribute of <Service><ServiceType type="…"/>:
// "voice" (the default when absent), "video", "data", "portedNumberQuery",
// "cnamQuery", "stirQuery".
type ServiceType = string

// TermCause is a <TerminationCause type="q850|h323|sip|xmpp"> with its TCCode
// and optional Description.
type TermCause struct {
	Type        string
	Code        int
	Description string
}

// MaxCallIDBytes bounds a decoded CallId: 684 bytes in base64, far below
// the toolkit's MaxValueBytes. The toolkit sets no limit of its own
// (OSPPCallIdNew takes any length; it can write up to 3069 bytes, 4095 in
// base64), so a toolkit gateway could send a call id this bound refuses.
// Authorize also checks the size of each token, which carries the call id
// (ErrTokenTooLarge).
const MaxCallIDBytes = 512

// UndefinedCallID is what the toolkit sends as the call id when the
// application gave none (src/osptransapi.c, OSPC_UNDEFINED_CALLID_STR); a
// token carrying it matches any call.
var UndefinedCallID = []byte("UNDEFINED")

// ---- element decoding helpers ----

// checkUnknown decides about an element a component does not use: skipped
// when it belongs to the OSP vocabulary or is marked critical="false",
// refused with 412 otherwise (ETSI TS 101 321 and OSPPMsgElemIsCritical:
// an element is critical unless it says critical="false").
func checkUnknown(n *node) error {
	if _, ok := vocabulary[n.name]; ok || !n.critical() {
		return nil
	}
	return perr(ErrCriticalElement, "<%s>", n.name)
}

func decodeInfo(n *node) Info {
	t, _ := n.attr("type")
	return Info{Type: t, Value: n.value()}
}

// decodeBin reads CallId and Token: encoding="base64" (what the toolkit
// writes), or "cdata"/absent for the value as is (OSPPMsgBinFromElement).
// Whitespace inside base64 is ignored, as the toolkit's decoder does.
func decodeBin(n *node, max int) ([]byte, error) { return decodeBinTo(nil, n, max) }

// decodeBinTo is decodeBin keeping the bytes in the spare capacity of
// *arena when they fit there (arena may be nil).
func decodeBinTo(arena *[]byte, n *node, max int) ([]byte, error) {
	enc, _ := n.attr("encoding")
	v := n.value()
	switch enc {
	case "base64":
		clean := strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, v)
		size := base64.StdEncoding.DecodedLen(len(clean))
		if size > max+2 {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		b := take(arena, size)
		k, err := base64.StdEncoding.Decode(b, []byte(clean))
		if err != nil {
			return nil, perr(ErrInvalidValue, "<%s>: %v", n.name, err)
		}
		if k > max {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		return b[:k], nil
	case "", "cdata":
		if len(v) > max {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		b := take(arena, len(v))
		copy(b, v)
		return b, nil
	}
	return nil, perr(ErrInvalidValue, "<%s> encoding %q", n.name, enc)
}

// take returns size bytes from the spare capacity of *arena, or new ones
// when they do not fit.
func take(arena *[]byte, size int) []byte {
	if arena == nil || cap(*arena)-len(*arena) < size {
		return make([]byte, size)
	}
	a := *arena
	*arena = a[:len(a)+size]
	return a[len(a) : len(a)+size : len(a)+size]
}

func decodeCallID(n *node) ([]byte, error) { return decodeCallIDTo(nil, n) }

func decodeCallIDTo(arena *[]byte, n *node) ([]byte, error) {
	b, err := decodeBinTo(arena, n, MaxCallIDBytes)
	if err == nil && len(b) == 0 {
		err = perr(ErrInvalidValue, "empty <CallId>")
	}
	return b, err
}

// decodeTime reads an OSP time. The toolkit writes only
// "YYYY-MM-DDThh:mm:ssZ"; RFC 3339 with a fraction or an offset is
// accepted too. An empty value is the zero time.
func decodeTime(n *node) (time.Time, error) {
	v := n.value()
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, perr(ErrInvalidValue, "<%s> %q is not a time", n.name, v)
	}
	// RFC 3339 offsets are below 24 hours, and a time must stay within the
	// years 1 to 9999 in UTC (what stores and answers can write back)
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return time.Time{}, perr(ErrInvalidValue, "<%s> %q: offset of 24 hours or more", n.name, v)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, perr(ErrInvalidValue, "<%s> %q is outside the years 1 to 9999 in UTC", n.name, v)
	}
	return t.UTC(), nil
}

func decodeUint(n *node) (uint64, error) {
	v := n.value()
	if v == "" || len(v) > 20 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, perr(ErrInvalidValue, "<%s> %q is not a decimal number", n.name, v)
	}
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, perr(ErrInvalidValue, "<%s> %q: %v", n.name, v, err)
	}
	return u, nil
}

func decodeInt(n *node, max uint64) (int, error) {
	u, err := decodeUint(n)
	if err == nil && u > max {
		err = perr(ErrInvalidValue, "<%s> %d larger than %d", n.name, u, max)
	}
	return int(u), err
}

// decodeBound reads a decimal number that is only an upper bound
// (MaximumDestinations): a larger value, of any number of digits, is max.
// A value that is not a decimal number (empty, signed) is refused.
func decodeBound(n *node, max int) (int, error) {
	v := n.value()
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, perr(ErrInvalidValue, "<%s> %q is not a decimal number", n.name, v)
	}
	// Only digits are left: ParseUint fails on overflow alone.
	u, err := strconv.ParseUint(v, 10, 64)
	if err != nil || u > uint64(max) {
		return max, nil
	}
	return int(u), nil
}

// decodeSeconds reads a decimal number of seconds ("30.000" in usage
// indications, "14400" in answers).
func decodeSeconds(n *node) (time.Duration, error) {
	v := n.value()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > maxSeconds || f != f {
		return 0, perr(ErrInvalidValue, "<%s> %q is not a number of seconds", n.name, v)
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), nil
}

// maxSeconds keeps durations far from time.Duration's range (about 292
// years): a call longer than a year is nonsense anyway.
const maxSeconds = 366 * 24 * 3600

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// decodeStatus reads <Status><Code/><Description/></Status>.
func decodeStatus(n *node) (Status, error) {
	var st Status
	hasCode := false
	for c := range n.children {
		switch c.name {
		case "Code":
			code, err := decodeInt(c, 9999)
			if err != nil {
				return st, err
			}
			st.Code, hasCode = code, true
		case "Description":
			st.Description = c.value()
		default:
			if err := checkUnknown(c); err != nil {
				return st, err
			}
		}
	}
	if !hasCode {
		return st, perr(ErrMissingElement, "<Status> without <Code>")
	}
	return st, nil
}

func writeStatus(w *xmlWriter, st Status) {
	w.open("Status")
	w.leafInt("Code", int64(st.Code))
	w.leafOpt("Description", st.Description)
	w.close("Status")
}

func decodeTermCause(n *node) (TermCause, error) {
	tc := TermCause{}
	tc.Type, _ = n.attr("type")
	for c := range n.children {
		switch c.name {
		case "TCCode":
			code, err := decodeInt(c, 1<<31-1)
			if err != nil {
				return tc, err
			}
			tc.Code = code
		case "Description":
			tc.Description = c.value()
		default:
			if err := checkUnknown(c); err != nil {
				return tc, err
			}
		}
	}
	return tc, nil
}

func writeTermCause(w *xmlWriter, tc TermCause) {
	w.open("TerminationCause", "type", tc.Type)
	w.leafInt("TCCode", int64(tc.Code))
	w.leafOpt("Description", tc.Description)
	w.close("TerminationCause")
}

// decodeService reads <Service><ServiceType type="…"/></Service>.
func decodeService(n *node) ServiceType {
	for c := range n.children {
		if c.name == "ServiceType" {
			t, _ := c.attr("type")
			return t
		}
	}
	return ""
}

func writeService(w *xmlWriter, st ServiceType) {
	if st == "" {
		w.empty("Service")
		return
	}
	w.open("Service")
	w.empty("ServiceType", "type", st)
	w.close("Service")
}

func writeInfos(w *xmlWriter, name string, infos []Info) {
	for _, in := range infos {
		w.leaf(name, in.Value, "type", in.Type)
	}
}
