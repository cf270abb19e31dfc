package osp

import "time"

// ReauthorizationRequest asks to extend the authorisation of a call in
// progress (OSPPTransactionRequestReauthorisation, src/ospreauthreq.c). It
// carries the transaction id of the original AuthorisationResponse and the
// token(s) in use.
type ReauthorizationRequest struct {
	MessageID   string
	Random      string
	ComponentID string
	Timestamp   time.Time
	Role        string
	CallID      []byte

	SourceInfo           []Info
	DeviceInfo           []Info
	SourceAlternate      []Info
	DestinationInfo      []Info
	DestinationAlternate []Info

	TransactionID uint64
	Duration      time.Duration // <UsageDetail>: call time so far
	Tokens        [][]byte
	CustomerID    string
	DeviceID      string
}

// Kind implements Message.
func (*ReauthorizationRequest) Kind() Kind { return KindReauthorizationRequest }

// Calling returns the calling number: the first SourceInfo that is a
// number (see Called).
func (r *ReauthorizationRequest) Calling() Info {
	in, _ := firstNumber(r.SourceInfo)
	return in
}

// Called returns the called number: the first DestinationInfo that is a
// number (not a routing number, carrier code or operator name).
func (r *ReauthorizationRequest) Called() Info {
	in, _ := firstNumber(r.DestinationInfo)
	return in
}

// DestinationAddress returns the signal address of the call's destination:
// the first DestinationAlternate of type "transport", or "".
func (r *ReauthorizationRequest) DestinationAddress() string {
	return findType(r.DestinationAlternate, TypeTransport)
}

// maxTokensPerRequest bounds the tokens of a reauthorization request.
const maxTokensPerRequest = 16

func decodeReauthReq(env *envelope) (*ReauthorizationRequest, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	r := &ReauthorizationRequest{MessageID: env.messageID, Random: env.random}
	r.ComponentID, _ = c.attr("componentId")
	hasTx := false
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if r.Timestamp, err = decodeTime(e); err != nil {
				return nil, err
			}
		case "Role":
			r.Role = e.value()
		case "CallId":
			if r.CallID, err = decodeCallID(e); err != nil {
				return nil, err
			}
		case "SourceInfo":
			r.SourceInfo = append(r.SourceInfo, decodeInfo(e))
		case "DeviceInfo":
			r.DeviceInfo = append(r.DeviceInfo, decodeInfo(e))
		case "SourceAlternate":
			r.SourceAlternate = append(r.SourceAlternate, decodeInfo(e))
		case "DestinationInfo":
			r.DestinationInfo = append(r.DestinationInfo, decodeInfo(e))
		case "DestinationAlternate":
			r.DestinationAlternate = append(r.DestinationAlternate, decodeInfo(e))
		case "TransactionId":
			if r.TransactionID, err = decodeUint(e); err != nil {
				return nil, err
			}
			hasTx = true
		case "UsageDetail":
			var u Usage
			if err := decodeUsageDetail(e, &u); err != nil {
				return nil, err
			}
			r.Duration = u.Duration
		case "Token":
			if len(r.Tokens) >= maxTokensPerRequest {
				return nil, perr(ErrTooManyElements, "more than %d tokens", maxTokensPerRequest)
			}
			t, err := decodeBin(e, MaxTokenBytes)
			if err != nil {
				return nil, err
			}
			r.Tokens = append(r.Tokens, t)
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
	if !hasTx {
		return nil, perr(ErrMissingElement, "<TransactionId>")
	}
	if err := requireNumbers(r.SourceInfo, r.DestinationInfo); err != nil {
		return nil, err
	}
	return r, nil
}

// Marshal implements Message, in the toolkit's element order.
func (r *ReauthorizationRequest) Marshal() ([]byte, error) {
	w := openMessage(r.MessageID, r.Random, 1024+len(r.Tokens)*2600)
	w.open("ReauthorizationRequest", "componentId", r.ComponentID)
	w.leafTime("Timestamp", r.Timestamp)
	w.leafOpt("Role", r.Role)
	if len(r.CallID) > 0 {
		w.leafBin("CallId", r.CallID)
	}
	writeInfos(w, "SourceInfo", r.SourceInfo)
	writeInfos(w, "DeviceInfo", r.DeviceInfo)
	writeInfos(w, "SourceAlternate", r.SourceAlternate)
	writeInfos(w, "DestinationInfo", r.DestinationInfo)
	writeInfos(w, "DestinationAlternate", r.DestinationAlternate)
	w.leafUint("TransactionId", r.TransactionID)
	if r.Duration > 0 {
		w.open("UsageDetail")
		w.leaf("Amount", formatSeconds(r.Duration))
		w.leaf("Increment", "1")
		w.leaf("Unit", "s")
		w.close("UsageDetail")
	}
	for _, t := range r.Tokens {
		w.leafBin("Token", t)
	}
	w.leafOpt("CustomerId", r.CustomerID, "critical", "false")
	w.leafOpt("DeviceId", r.DeviceID, "critical", "false")
	w.close("ReauthorizationRequest")
	w.close("Message")
	return w.bytes()
}

// ReauthorizationResponse answers a ReauthorizationRequest
// (src/ospreauthrsp.c). The toolkit requires TransactionId equal to the
// call's (else OSPC_ERR_TRAN_TXID_INVALID), a 2xx Status, and a
// Destination with a Token and a UsageDetail time limit
// (OSPPTransactionRequestReauthorisation). The component is written
// "ReauthorizationResponse": the toolkit recognises no other spelling.
type ReauthorizationResponse struct {
	MessageID     string
	Random        string
	ComponentID   string
	Timestamp     time.Time
	Status        Status
	TransactionID uint64
	Destination   *ResponseDestination
}

// Kind implements Message.
func (*ReauthorizationResponse) Kind() Kind { return KindReauthorizationResponse }

func decodeReauthRsp(env *envelope) (*ReauthorizationResponse, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	r := &ReauthorizationResponse{MessageID: env.messageID, Random: env.random}
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
		case "Destination":
			d, err := decodeDestination(e)
			if err != nil {
				return nil, err
			}
			r.Destination = &d
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

// Marshal implements Message.
func (r *ReauthorizationResponse) Marshal() ([]byte, error) {
	size := answerSize(r.MessageID, r.Random, r.ComponentID, r.Status)
	if r.Destination != nil {
		size += destinationSize(r.Destination)
	}
	w := openMessage(r.MessageID, r.Random, size)
	w.open("ReauthorizationResponse", "componentId", r.ComponentID)
	w.leafTime("Timestamp", r.Timestamp)
	writeStatus(w, r.Status)
	if r.TransactionID != 0 {
		w.leafUint("TransactionId", r.TransactionID)
	}
	if r.Destination != nil {
		writeDestination(w, r.Destination)
	}
	w.close("ReauthorizationResponse")
	w.close("Message")
	return w.bytes()
}
