package osp

import (
	"errors"
	"time"
)

// Message is a parsed or constructed OSP message: one of
// *AuthorizationRequest, *AuthorisationResponse, *UsageIndication,
// *UsageConfirmation, *ReauthorizationRequest, *ReauthorizationResponse,
// *CapabilitiesIndication, *CapabilitiesConfirmation.
type Message interface {
	Kind() Kind
	// Marshal writes the message as the toolkit writes and reads it: an
	// XML declaration, then <Message messageId=… random=…> around the
	// component(s).
	Marshal() ([]byte, error)
}

// ContentType is the HTTP Content-Type of an unsigned OSP message body; the
// toolkit's MIME parser (src/ospmime.c) takes text/plain as a message
// without signature.
const ContentType = "text/plain"

// envelope is a parsed <Message> and its components, all of one kind.
type envelope struct {
	messageID string
	random    string
	kind      Kind
	comps     []*node
}

func (e *envelope) componentIDs() []string {
	ids := make([]string, 0, len(e.comps))
	for _, c := range e.comps {
		id, _ := c.attr("componentId")
		ids = append(ids, id)
	}
	return ids
}

// annotate fills the request context into a *ParseError.
func (e *envelope) annotate(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.Kind = e.kind
		pe.MessageID = e.messageID
		pe.ComponentIDs = e.componentIDs()
	}
	return err
}

// maxComponents bounds the components of one message (the toolkit batches
// usage indications; everything else comes alone).
const maxComponents = 256

// parseEnvelope fills env (the caller's, which can then stay on its stack).
func parseEnvelope(env *envelope, data []byte, lim Limits) error {
	root, err := parseTree(data, lim)
	if err != nil {
		return err
	}
	if root.name == "Message" {
		env.messageID, _ = root.attr("messageId")
		env.random, _ = root.attr("random")
		// a critical element beside the components is refused once they
		// are all known, so that the refusal answers them wherever it stood
		var critical error
		for c := range root.children {
			k, ok := componentKinds[c.name]
			if !ok {
				if err := checkUnknown(c); err != nil && critical == nil {
					critical = err
				}
				continue
			}
			if env.kind != KindUnknown && k != env.kind {
				return env.annotate(perr(ErrUnknownMessage, "<%s> and <%s> in one message", env.kind, c.name))
			}
			env.kind = k
			env.comps = append(env.comps, c)
			if len(env.comps) > maxComponents {
				return env.annotate(perr(ErrTooManyElements, "more than %d components", maxComponents))
			}
		}
		if critical != nil {
			return env.annotate(critical)
		}
		if len(env.comps) == 0 {
			return env.annotate(perr(ErrUnknownMessage, "<Message> without a component"))
		}
	} else if k, ok := componentKinds[root.name]; ok {
		// The toolkit's parsers take a component without the <Message>
		// wrapper too.
		env.kind = k
		env.comps = []*node{root}
	} else {
		return perr(ErrUnknownMessage, "root element <%s>", root.name)
	}
	if env.kind == KindUnsupported {
		return env.annotate(perr(ErrUnsupported, "<%s>", env.comps[0].name))
	}
	return nil
}

// single returns the only component of a message that may carry one.
func (e *envelope) single() (*node, error) {
	if len(e.comps) != 1 {
		return nil, e.annotate(perr(ErrInvalidValue, "%d <%s> components in one message", len(e.comps), e.kind))
	}
	return e.comps[0], nil
}

func isRequest(k Kind) bool { return k.Answer() != KindUnknown }

// ParseRequest parses what a device sends: an AuthorizationRequest,
// UsageIndication, ReauthorizationRequest or CapabilitiesIndication, within
// DefaultLimits. Errors are *ParseError; RefusalFor turns one into the
// answer refusing the request when the request's kind was recognised.
func ParseRequest(data []byte) (Message, error) {
	return ParseRequestWithLimits(data, DefaultLimits)
}

// ParseRequestWithLimits is ParseRequest within other limits.
func ParseRequestWithLimits(data []byte, lim Limits) (Message, error) {
	return parseKind(data, lim, isRequest)
}

// ParseAnswer parses what the server sends back: an AuthorisationResponse,
// UsageConfirmation, ReauthorizationResponse or CapabilitiesConfirmation.
// It is for Go devices and tests; the server itself never needs it.
func ParseAnswer(data []byte) (Message, error) {
	return parseKind(data, DefaultLimits, func(k Kind) bool { return !isRequest(k) })
}

func parseKind(data []byte, lim Limits, want func(Kind) bool) (Message, error) {
	env := &envelope{}
	if err := parseEnvelope(env, data, lim); err != nil {
		return nil, err
	}
	if !want(env.kind) {
		return nil, env.annotate(perr(ErrUnexpectedKind, "<%s>", env.kind))
	}
	var m Message
	var err error
	switch env.kind {
	case KindAuthorizationRequest:
		m, err = decodeAuthReq(env)
	case KindAuthorisationResponse:
		m, err = decodeAuthRsp(env)
	case KindUsageIndication:
		m, err = decodeUsageInd(env)
	case KindUsageConfirmation:
		m, err = decodeUsageCnf(env)
	case KindReauthorizationRequest:
		m, err = decodeReauthReq(env)
	case KindReauthorizationResponse:
		m, err = decodeReauthRsp(env)
	case KindCapabilitiesIndication:
		m, err = decodeCapInd(env)
	case KindCapabilitiesConfirmation:
		m, err = decodeCapCnf(env)
	default:
		err = perr(ErrUnknownMessage, "<%s>", env.kind)
	}
	if err != nil {
		return nil, env.annotate(err)
	}
	return m, nil
}

// parseAs parses a message of kind want, which T is. A message of another
// kind is refused before it is decoded, with its messageId and
// componentIds, so that RefusalFor can answer it.
func parseAs[T Message](data []byte, want Kind) (T, error) {
	m, err := parseKind(data, DefaultLimits, func(k Kind) bool { return k == want })
	if err != nil {
		var zero T
		return zero, err
	}
	return m.(T), nil
}

// ParseAuthorizationRequest parses an AuthorizationRequest (either spelling).
func ParseAuthorizationRequest(data []byte) (*AuthorizationRequest, error) {
	return parseAs[*AuthorizationRequest](data, KindAuthorizationRequest)
}

// ParseUsageIndication parses a message of one or more UsageIndications.
func ParseUsageIndication(data []byte) (*UsageIndication, error) {
	return parseAs[*UsageIndication](data, KindUsageIndication)
}

// ParseReauthorizationRequest parses a ReauthorizationRequest.
func ParseReauthorizationRequest(data []byte) (*ReauthorizationRequest, error) {
	return parseAs[*ReauthorizationRequest](data, KindReauthorizationRequest)
}

// ParseCapabilitiesIndication parses a CapabilitiesIndication.
func ParseCapabilitiesIndication(data []byte) (*CapabilitiesIndication, error) {
	return parseAs[*CapabilitiesIndication](data, KindCapabilitiesIndication)
}

// ParseAuthorisationResponse parses an AuthorisationResponse (either
// spelling).
func ParseAuthorisationResponse(data []byte) (*AuthorisationResponse, error) {
	return parseAs[*AuthorisationResponse](data, KindAuthorisationResponse)
}

// ParseUsageConfirmation parses a message of one or more UsageConfirmations.
func ParseUsageConfirmation(data []byte) (*UsageConfirmation, error) {
	return parseAs[*UsageConfirmation](data, KindUsageConfirmation)
}

// ParseReauthorizationResponse parses a ReauthorizationResponse.
func ParseReauthorizationResponse(data []byte) (*ReauthorizationResponse, error) {
	return parseAs[*ReauthorizationResponse](data, KindReauthorizationResponse)
}

// ParseCapabilitiesConfirmation parses a CapabilitiesConfirmation.
func ParseCapabilitiesConfirmation(data []byte) (*CapabilitiesConfirmation, error) {
	return parseAs[*CapabilitiesConfirmation](data, KindCapabilitiesConfirmation)
}

// Refuse builds the answer refusing req with st (a status that is not a
// success): an AuthorisationResponse, UsageConfirmation (one per
// indication), ReauthorizationResponse or CapabilitiesConfirmation echoing
// the request's messageId and componentId(s). An AuthorisationResponse also
// carries the SIP termination cause of st (SIPCause), which the toolkit
// hands to the gateway; a ReauthorizationResponse none (the toolkit's
// OSPPReauthRspFromElement does not handle <TerminationCause> and would
// refuse the answer for it).
func Refuse(req Message, st Status, now time.Time) (Message, error) {
	switch r := req.(type) {
	case *AuthorizationRequest:
		return refusal(KindAuthorizationRequest, r.MessageID, []string{r.ComponentID}, st, now)
	case *UsageIndication:
		ids := make([]string, len(r.Usages))
		for i, u := range r.Usages {
			ids[i] = u.ComponentID
		}
		return refusal(KindUsageIndication, r.MessageID, ids, st, now)
	case *ReauthorizationRequest:
		m, err := refusal(KindReauthorizationRequest, r.MessageID, []string{r.ComponentID}, st, now)
		if rsp, ok := m.(*ReauthorizationResponse); ok {
			// the call's, as a success carries it (the toolkit compares
			// it before it reads the status, which then decides)
			rsp.TransactionID = r.TransactionID
		}
		return m, err
	case *CapabilitiesIndication:
		return refusal(KindCapabilitiesIndication, r.MessageID, []string{r.ComponentID}, st, now)
	}
	return nil, ErrUnexpectedKind
}

// RefusalFor builds the answer refusing a request that ParseRequest (or
// one of the Parse… request functions) rejected with err: its Status,
// echoing the messageId and componentIds it carried. It fails with
// ErrUnknownMessage when the parser could not tell what the request was
// (malformed XML, oversize, …): there is no OSP answer for that, so the
// caller answers at the HTTP level (400).
func RefusalFor(err error, now time.Time) (Message, error) {
	var pe *ParseError
	if !errors.As(err, &pe) || !isRequest(pe.Kind) {
		return nil, ErrUnknownMessage
	}
	return refusal(pe.Kind, pe.MessageID, pe.ComponentIDs, pe.Status, now)
}

func refusal(req Kind, messageID string, componentIDs []string, st Status, now time.Time) (Message, error) {
	if st.OK() {
		return nil, errors.New("osp: a refusal needs a status that is not a success")
	}
	cid := ""
	if len(componentIDs) > 0 {
		cid = componentIDs[0]
	}
	now = now.UTC().Truncate(time.Second)
	switch req {
	case KindAuthorizationRequest:
		return (&AuthorisationResponse{MessageID: messageID, ComponentID: cid, Timestamp: now}).refusedWith(st), nil
	case KindUsageIndication:
		c := &UsageConfirmation{MessageID: messageID}
		if len(componentIDs) == 0 {
			componentIDs = []string{""}
		}
		for _, id := range componentIDs {
			c.Confirmations = append(c.Confirmations, Confirmation{ComponentID: id, Timestamp: now, Status: st})
		}
		return c, nil
	case KindReauthorizationRequest:
		return &ReauthorizationResponse{MessageID: messageID, ComponentID: cid, Timestamp: now, Status: st}, nil
	case KindCapabilitiesIndication:
		return &CapabilitiesConfirmation{MessageID: messageID, ComponentID: cid, Timestamp: now, Status: st}, nil
	}
	return nil, ErrUnknownMessage
}

// openMessage starts a document with <Message messageId=… random=…>.
func openMessage(messageID, random string, sizeHint int) *xmlWriter {
	w := newWriter(true, sizeHint)
	w.open("Message", "messageId", messageID, "random", random)
	return w
}
