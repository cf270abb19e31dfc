package osp

import (
	"encoding/base64"
	"time"
)

// AuthorisationResponse answers an AuthorizationRequest
// (src/ospauthrsp.c, OSPPAuthRspFromElement). The toolkit requires Status
// (OSPPTransactionRequestAuthorisation dereferences it unchecked), reads
// TransactionId into the transaction (it is reported back in usage and
// reauthorization), and refuses the whole response for an element it does
// not handle unless marked critical="false" — so Marshal writes only
// elements it handles.
type AuthorisationResponse struct {
	MessageID   string
	Random      string
	ComponentID string
	Timestamp   time.Time
	Status      Status
	// TransactionID identifies the authorisation; it is written when not
	// zero. Every token of the response carries it as well.
	TransactionID uint64
	// TermCause is the response-level <TerminationCause>: on a refusal,
	// the SIP response a proxy should send the caller (SIPCause; Refuse
	// and Authorize set it). Nil writes none, as on a success.
	TermCause    *TermCause
	Destinations []ResponseDestination
}

// Kind implements Message.
func (*AuthorisationResponse) Kind() Kind { return KindAuthorisationResponse }

// ResponseDestination is one <Destination> of an AuthorisationResponse or
// ReauthorizationResponse (src/ospdest.c, OSPPDestFromElement).
type ResponseDestination struct {
	SourceInfo      Info   // calling number (the toolkit falls back to the request's)
	Protocol        string // <SignalingProtocol>, "sip", "h323-Q931", …
	OSPVersion      string // <OSPVersion>, "2.1.1"; "0.0.0" says the destination does not do OSP
	DestinationInfo Info   // called number at this destination
	// NumberPortability echoes the request's number portability data
	// (<DestinationInfo type="routingnumber">, "cic", "npdi"), which the
	// toolkit hands to the source with
	// OSPPTransactionGetNumberPortabilityParameters.
	NumberPortability NumberPortability
	// OperatorNames echoes the request's operator names
	// (<DestinationInfo type="spid">, "ocn", "mcc"… in the toolkit's
	// order), which OSPPTransactionGetOperatorName reads.
	OperatorNames []Info
	// SignalAddress is <DestinationSignalAddress>: "[ip]:port" or
	// "host:port" (at most MaxSignalAddress bytes, what gateways read back).
	SignalAddress string
	// NetworkID is <DestinationAlternate type="network">: the destination
	// network / trunk group, which the toolkit hands to the application.
	NetworkID string
	// Token is the raw authorisation token: CMS SignedData (DER) or
	// TokenInfo XML; base64 with encoding="base64" on the wire.
	Token      []byte
	ValidAfter time.Time
	ValidUntil time.Time
	// MaxDuration is the call time limit (<UsageDetail> Amount×Increment,
	// Unit "s"); 0 writes no UsageDetail (no limit).
	MaxDuration time.Duration
	Service     ServiceType
	CallID      []byte
}

func decodeAuthRsp(env *envelope) (*AuthorisationResponse, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	r := &AuthorisationResponse{MessageID: env.messageID, Random: env.random}
	r.ComponentID, _ = c.attr("componentId")
	hasStatus := false
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if r.Timestamp, err = decodeTime(e); err != nil {
				return nil, err
			}
		case "Status":
			if r.Status, err = decodeStatus(e); err != nil {
				return nil, err
			}
			hasStatus = true
		case "TransactionId":
			if r.TransactionID, err = decodeUint(e); err != nil {
				return nil, err
			}
		case "TerminationCause":
			tc, err := decodeTermCause(e)
			if err != nil {
				return nil, err
			}
			r.TermCause = &tc
		case "Destination":
			if len(r.Destinations) >= maxDestinationsLimit {
				return nil, perr(ErrTooManyElements, "more than %d destinations", maxDestinationsLimit)
			}
			d, err := decodeDestination(e)
			if err != nil {
				return nil, err
			}
			r.Destinations = append(r.Destinations, d)
		default:
			if err := checkUnknown(e); err != nil {
				return nil, err
			}
		}
	}
	if !hasStatus {
		return nil, perr(ErrMissingElement, "<Status>")
	}
	return r, nil
}

func decodeDestination(n *node) (ResponseDestination, error) {
	var d ResponseDestination
	var err error
	var np []Info
	for e := range n.children {
		switch e.name {
		case "SourceInfo":
			d.SourceInfo = decodeInfo(e)
		case "SignalingProtocol":
			d.Protocol = e.value()
		case "OSPVersion":
			d.OSPVersion = e.value()
		case "DestinationInfo":
			// the toolkit takes each by its type (OSPPDestInfoFromElement):
			// number portability and operator names are not the number
			if in := decodeInfo(e); !nonNumberTypes[in.Type] {
				d.DestinationInfo = in
			} else {
				np = append(np, in)
			}
		case "DestinationSignalAddress":
			d.SignalAddress = e.value()
		case "DestinationAlternate":
			if t, _ := e.attr("type"); t == TypeNetwork {
				d.NetworkID = e.value()
			}
		case "Token":
			if d.Token, err = decodeBin(e, MaxTokenBytes); err != nil {
				return d, err
			}
		case "ValidAfter":
			if d.ValidAfter, err = decodeTime(e); err != nil {
				return d, err
			}
		case "ValidUntil":
			if d.ValidUntil, err = decodeTime(e); err != nil {
				return d, err
			}
		case "UsageDetail":
			if d.MaxDuration, d.Service, err = decodeLimit(e); err != nil {
				return d, err
			}
		case "CallId":
			if d.CallID, err = decodeCallID(e); err != nil {
				return d, err
			}
		case "AuthorityURL", "TerminationCause":
		default:
			if err := checkUnknown(e); err != nil {
				return d, err
			}
		}
	}
	d.NumberPortability = numberPortability(np)
	d.OperatorNames = operatorNames(np)
	return d, nil
}

// decodeLimit reads the <UsageDetail> of a destination or token: Amount ×
// Increment with Unit "s", the only unit the toolkit takes
// (OSPPUsageDetailFromElement refuses the destination otherwise).
func decodeLimit(n *node) (time.Duration, ServiceType, error) {
	var amount, incr uint64
	var hasAmount, hasIncr, hasUnit bool
	var svc ServiceType
	var err error
	for e := range n.children {
		switch e.name {
		case "Amount":
			if amount, err = decodeUint(e); err != nil {
				return 0, "", err
			}
			hasAmount = true
		case "Increment":
			if incr, err = decodeUint(e); err != nil {
				return 0, "", err
			}
			hasIncr = true
		case "Unit":
			if e.value() != "s" {
				return 0, "", perr(ErrInvalidValue, "<Unit> %q, only \"s\" is supported", e.value())
			}
			hasUnit = true
		case "Service":
			svc = decodeService(e)
		case "TerminationCause":
		default:
			if err := checkUnknown(e); err != nil {
				return 0, "", err
			}
		}
	}
	if !hasAmount || !hasIncr || !hasUnit {
		return 0, svc, perr(ErrMissingElement, "<UsageDetail> needs Amount, Increment and Unit")
	}
	if incr != 0 && amount > maxSeconds/incr {
		return 0, svc, perr(ErrInvalidValue, "<UsageDetail> %d×%d seconds, more than %d", amount, incr, maxSeconds)
	}
	return time.Duration(amount*incr) * time.Second, svc, nil
}

// writeLimit writes the usage detail the capture shows:
// <UsageDetail><Service/><Amount>14400</Amount><Increment>1</Increment><Unit>s</Unit></UsageDetail>.
func writeLimit(w *xmlWriter, d time.Duration, svc ServiceType) {
	w.open("UsageDetail")
	writeService(w, svc)
	w.leafInt("Amount", int64(d/time.Second))
	w.leaf("Increment", "1")
	w.leaf("Unit", "s")
	w.close("UsageDetail")
}

// destinationSize is a little more than writeDestination writes for d
// (unless values need escaping), so that an answer is written into one
// buffer without growing it.
func destinationSize(d *ResponseDestination) int {
	n := 560 + len(d.SourceInfo.Type) + len(d.SourceInfo.Value) + len(d.Protocol) + len(d.OSPVersion) +
		len(d.DestinationInfo.Type) + len(d.DestinationInfo.Value) + len(d.SignalAddress) + len(d.NetworkID) +
		base64.StdEncoding.EncodedLen(len(d.Token)) + base64.StdEncoding.EncodedLen(len(d.CallID)) +
		d.NumberPortability.size() + operatorNamesSize(d.OperatorNames)
	if d.Service != "" {
		n += 40 + len(d.Service)
	}
	return n
}

// answerSize is the same for the rest of an answer.
func answerSize(messageID, random, componentID string, st Status) int {
	return 320 + len(messageID) + len(random) + len(componentID) + len(st.Description)
}

func writeDestination(w *xmlWriter, d *ResponseDestination) {
	w.open("Destination")
	if d.SourceInfo.Value != "" {
		w.leaf("SourceInfo", d.SourceInfo.Value, "type", d.SourceInfo.Type)
	}
	w.leafOpt("SignalingProtocol", d.Protocol)
	w.leafOpt("OSPVersion", d.OSPVersion)
	// number portability and operator names before the number: the
	// toolkit reads each by its type, and readers that take the last
	// DestinationInfo as the number (this package's before it read them)
	// still find the number
	writeNumberPortability(w, d.NumberPortability)
	writeOperatorNames(w, d.OperatorNames)
	if d.DestinationInfo.Value != "" {
		w.leaf("DestinationInfo", d.DestinationInfo.Value, "type", d.DestinationInfo.Type)
	}
	w.leafOpt("DestinationSignalAddress", d.SignalAddress)
	w.leafOpt("DestinationAlternate", d.NetworkID, "type", TypeNetwork)
	if len(d.Token) > 0 {
		w.leafBin("Token", d.Token)
	}
	w.leafTime("ValidAfter", d.ValidAfter)
	w.leafTime("ValidUntil", d.ValidUntil)
	if d.MaxDuration >= time.Second {
		writeLimit(w, d.MaxDuration, d.Service)
	}
	if len(d.CallID) > 0 {
		w.leafBin("CallId", d.CallID)
	}
	w.close("Destination")
}

// Marshal implements Message, in the element order of
// authorisation-response-accepted.xml.
func (r *AuthorisationResponse) Marshal() ([]byte, error) {
	size := answerSize(r.MessageID, r.Random, r.ComponentID, r.Status)
	if r.TermCause != nil {
		size += 120 + len(r.TermCause.Type) + len(r.TermCause.Description)
	}
	for i := range r.Destinations {
		size += destinationSize(&r.Destinations[i])
	}
	w := openMessage(r.MessageID, r.Random, size)
	w.open("AuthorisationResponse", "componentId", r.ComponentID)
	w.leafTime("Timestamp", r.Timestamp)
	writeStatus(w, r.Status)
	if r.TransactionID != 0 {
		w.leafUint("TransactionId", r.TransactionID)
	}
	if r.TermCause != nil {
		writeTermCause(w, *r.TermCause)
	}
	for i := range r.Destinations {
		writeDestination(w, &r.Destinations[i])
	}
	w.close("AuthorisationResponse")
	w.close("Message")
	return w.bytes()
}
