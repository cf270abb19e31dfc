package osp

import "time"

// AuthorizationRequest is what a source device (proxy, gateway) sends to
// have a call authorised and routed (OSPPTransactionRequestAuthorisation,
// src/ospauthreq.c OSPPAuthReqToElement). Elements of the toolkit's
// vocabulary not represented here (CallingPartyInfo, JIP, SipHeaders, …)
// are skipped when parsed and not written.
type AuthorizationRequest struct {
	MessageID   string // <Message messageId>
	Random      string // <Message random>
	ComponentID string // <AuthorizationRequest componentId>
	Timestamp   time.Time

	// CallIDs are the call identifiers, raw (base64 on the wire); the
	// toolkit sends one per destination it may try, or "UNDEFINED".
	CallIDs [][]byte

	SourceInfo           []Info // the calling number, type e164/sip/url/…
	SourceAlternate      []Info // e.g. type="transport" "[1.2.3.4]:5060", type="subscriber"
	DeviceInfo           []Info // the source device, type="transport"
	DestinationInfo      []Info // the called number, plus number-portability qualifiers
	DestinationAlternate []Info
	Protocol             string // <SignalingProtocol type="source">

	Service         ServiceType // "" when <Service/> is empty or absent (voice)
	MaxDestinations int         // <MaximumDestinations>, 0 when absent, at most 1000 (larger values are lowered)
	CustomerID      string      // <CustomerId critical="false">
	DeviceID        string      // <DeviceId critical="false">
}

// Kind implements Message.
func (*AuthorizationRequest) Kind() Kind { return KindAuthorizationRequest }

// Calling returns the calling number: the first SourceInfo that is a
// number (see Called).
func (r *AuthorizationRequest) Calling() Info {
	in, _ := firstNumber(r.SourceInfo)
	return in
}

// Called returns the called number: the first DestinationInfo that is a
// number (not a routing number, carrier code or operator name).
func (r *AuthorizationRequest) Called() Info {
	in, _ := firstNumber(r.DestinationInfo)
	return in
}

// maxDestinationsLimit bounds MaximumDestinations: a request asking for
// more gets at most this many (the element is only an upper bound), and an
// answer listing more is refused.
const maxDestinationsLimit = 1000

func decodeAuthReq(env *envelope) (*AuthorizationRequest, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	r := &AuthorizationRequest{MessageID: env.messageID, Random: env.random}
	r.ComponentID, _ = c.attr("componentId")
	// The call ids (one per destination the device may try) share one
	// array: their decoded bytes are no more than their text.
	var ids []byte
	if n, size := countCallIDs(c); n > 0 {
		r.CallIDs = make([][]byte, 0, n)
		ids = make([]byte, 0, size)
	}
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if r.Timestamp, err = decodeTime(e); err != nil {
				return nil, err
			}
		case "CallId":
			id, err := decodeCallIDTo(&ids, e)
			if err != nil {
				return nil, err
			}
			r.CallIDs = append(r.CallIDs, id)
		case "SourceInfo":
			r.SourceInfo = append(r.SourceInfo, decodeInfo(e))
		case "SourceAlternate":
			r.SourceAlternate = append(r.SourceAlternate, decodeInfo(e))
		case "DeviceInfo":
			r.DeviceInfo = append(r.DeviceInfo, decodeInfo(e))
		case "DestinationInfo":
			r.DestinationInfo = append(r.DestinationInfo, decodeInfo(e))
		case "DestinationAlternate":
			r.DestinationAlternate = append(r.DestinationAlternate, decodeInfo(e))
		case "SignalingProtocol":
			r.Protocol = e.value()
		case "Service":
			r.Service = decodeService(e)
		case "MaximumDestinations":
			if r.MaxDestinations, err = decodeBound(e, maxDestinationsLimit); err != nil {
				return nil, err
			}
		case "CustomerId":
			r.CustomerID = e.value()
		case "DeviceId":
			r.DeviceID = e.value()
		default:
			if err := checkUnknown(e); err != nil {
				return nil, err
			}
		}
	}
	if err := requireNumbers(r.SourceInfo, r.DestinationInfo); err != nil {
		return nil, err
	}
	return r, nil
}

// countCallIDs returns the number of <CallId> children of c and the
// length of their values.
func countCallIDs(c *node) (n, size int) {
	for e := range c.children {
		if e.name == "CallId" {
			n++
			size += len(e.value())
		}
	}
	return n, size
}

// Marshal implements Message, in the toolkit's element order.
func (r *AuthorizationRequest) Marshal() ([]byte, error) {
	w := openMessage(r.MessageID, r.Random, 1024)
	w.open("AuthorizationRequest", "componentId", r.ComponentID)
	w.leafTime("Timestamp", r.Timestamp)
	for _, id := range r.CallIDs {
		w.leafBin("CallId", id)
	}
	writeInfos(w, "SourceInfo", r.SourceInfo)
	writeInfos(w, "DeviceInfo", r.DeviceInfo)
	writeInfos(w, "SourceAlternate", r.SourceAlternate)
	writeInfos(w, "DestinationInfo", r.DestinationInfo)
	writeInfos(w, "DestinationAlternate", r.DestinationAlternate)
	w.leafOpt("SignalingProtocol", r.Protocol, "type", "source")
	writeService(w, r.Service)
	if r.MaxDestinations > 0 {
		w.leafInt("MaximumDestinations", int64(r.MaxDestinations))
	}
	w.leafOpt("CustomerId", r.CustomerID, "critical", "false")
	w.leafOpt("DeviceId", r.DeviceID, "critical", "false")
	w.close("AuthorizationRequest")
	w.close("Message")
	return w.bytes()
}
