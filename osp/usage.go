package osp

import (
	"time"
)

// UsageIndication is a message of one or more <UsageIndication> components:
// the call detail records a device reports after calls
// (OSPPTransactionReportUsage, src/ospusageind.c). The toolkit may batch
// several in one message; each is answered by its own UsageConfirmation.
type UsageIndication struct {
	MessageID string
	Random    string
	Usages    []Usage
}

// Kind implements Message.
func (*UsageIndication) Kind() Kind { return KindUsageIndication }

// Usage is one <UsageIndication> component. The elements no other field
// holds (CallingPartyInfo, Codec, PricingIndication, …) are kept whole in
// Extra and ExtraDetail.
type Usage struct {
	ComponentID string
	// Timestamp is when the device built the indication, by its clock
	// (the toolkit's time(NULL) in OSPPTransactionBuildUsage): a report
	// the application makes again after a failed one has a later one.
	Timestamp time.Time
	Role      string // "source", "destination", "other"
	// RoleState is <RoleInfo><State>: start, stop, interim… (the
	// toolkit's OSPPTransactionSetRoleInfo), for devices that report a
	// call more than once.
	RoleState     string
	TransactionID uint64
	CallID        []byte

	SourceInfo           []Info
	SourceAlternate      []Info
	DeviceInfo           []Info
	DestinationInfo      []Info
	DestinationAlternate []Info
	// GroupID is <Group><GroupId>: the toolkit writes there the
	// conference id the application gives OSPPTransactionReportUsage
	// (OSPPAddConfIdToUsageElement, src/ospusage.c).
	GroupID string
	// SetupAttempt is <SetupAttempt>: which attempt at the destination
	// this is (OSPPTransactionSetSetupAttempt, or else the count
	// OSPPTransactionSetDestinationCount gives); TotalSetupAttempts is
	// <TotalSetupAttempts> (OSPPTransactionSetTotalSetupAttempts). The
	// toolkit writes each only when set, and 0 is a value: nil when
	// absent, or when not a decimal number (the usage is not refused for
	// it, as before these were parsed).
	SetupAttempt       *int
	TotalSetupAttempts *int
	// ServiceType is <Service><ServiceType type>: voice, video… (the
	// terminating side's, when its authorization said).
	ServiceType ServiceType

	// From <UsageDetail>. The toolkit writes a <SignalingProtocol> per
	// protocol type it knows (source, destination, na) and a
	// <PostDialDelay> per side (type="destination", the provider's, set
	// with OSPPTransactionSetProviderPDD, then type="source", the
	// gateway's own).
	Protocol Info // type="destination"; else one without type; else the first
	// Protocols are all the <SignalingProtocol>s, in the order they came
	// (the toolkit's OSPPTransactionSetProtocol gives one per type:
	// source, destination, na). Marshal writes them when set, else
	// Protocol.
	Protocols     []Info
	Duration      time.Duration // Amount × Increment, Unit "s"
	StartTime     time.Time
	EndTime       time.Time
	AlertTime     time.Time
	ConnectTime   time.Time
	PostDialDelay time.Duration // type="source" or without type
	// ProviderPostDialDelay is <PostDialDelay type="destination">.
	ProviderPostDialDelay time.Duration
	// HasPostDialDelay and HasProviderPostDialDelay say that the device
	// reported the delay, 0 included: the toolkit writes the source's
	// when the application says it has one (OSPPTransactionReportUsage's
	// ospvHasPDDInfo) and the provider's when one was set (ProviderPDD
	// >= 0), "0.000" for a delay of 0. Marshal writes a delay that is set
	// or above 0.
	HasPostDialDelay         bool
	HasProviderPostDialDelay bool
	ReleaseSource            string // "source", "destination", "internal", "external", "unknown"
	TermCauses               []TermCause
	// Statistics are the <Statistics> elements, as they came (the
	// toolkit's OSPPStatsToElement, in <UsageDetail>: packets lost sent
	// and received, which OSPPTransactionReportUsage takes, delay, jitter,
	// MOS… set with OSPPTransactionSetLost and friends); normally one.
	// Element.Flatten lists their values.
	Statistics []Element

	CustomerID string
	DeviceID   string

	// Extra are the children of <UsageIndication> that no field above
	// holds, and ExtraDetail those of <UsageDetail>, whole and in the
	// order they came, so that records keep all the device reported:
	// what the toolkit writes from its OSPPTransactionSet… setters
	// (src/ospusageind.c), e.g. <CallingPartyInfo> and <CalledPartyInfo>
	// (user name, id, group), <PricingIndication> (amount, increment,
	// unit, currency), <CustomInfo>, <TransferId>, realms, SIP headers,
	// <UserAgent>, <ChargingVector>, <JIP>, <StirInfo>, <SdpFingerprint>,
	// redirect information in Extra; <Codec> (voice and video, per side),
	// <SessionId> and the media addresses in ExtraDetail. Children of
	// <RoleInfo> other than <State> (the toolkit's Format and VendorInfo)
	// and of <Group> other than <GroupId> are kept in Extra as an element
	// of that name holding just them. Unknown elements are kept as well
	// when marked critical="false" (any other is refused, see
	// checkUnknown); the parse limits bound them all. Marshal writes them
	// back at the end of their parent, in their order (a kept <RoleInfo>
	// or <Group> as a second element of that name), not where the toolkit
	// writes them: no reader of indications depends on the order.
	Extra       []Element
	ExtraDetail []Element
}

// Calling returns the calling number: the first SourceInfo that is a
// number (see Called).
func (u *Usage) Calling() Info {
	in, _ := firstNumber(u.SourceInfo)
	return in
}

// Called returns the called number: the first DestinationInfo that is a
// number (not a routing number, carrier code or operator name).
func (u *Usage) Called() Info {
	in, _ := firstNumber(u.DestinationInfo)
	return in
}

func decodeUsageInd(env *envelope) (*UsageIndication, error) {
	m := &UsageIndication{MessageID: env.messageID, Random: env.random}
	for _, c := range env.comps {
		u, err := decodeUsage(c)
		if err != nil {
			return nil, err
		}
		m.Usages = append(m.Usages, u)
	}
	return m, nil
}

func decodeUsage(c *node) (Usage, error) {
	var u Usage
	var err error
	u.ComponentID, _ = c.attr("componentId")
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if u.Timestamp, err = decodeTime(e); err != nil {
				return u, err
			}
		case "Role":
			u.Role = e.value()
		case "RoleInfo":
			rest, err := keepUnmodeled(e, "State", func(r *node) { u.RoleState = r.value() })
			if err != nil {
				return u, err
			}
			u.Extra = append(u.Extra, rest...)
		case "TransactionId":
			if u.TransactionID, err = decodeUint(e); err != nil {
				return u, err
			}
		case "CallId":
			if u.CallID, err = decodeCallID(e); err != nil {
				return u, err
			}
		case "SourceInfo":
			u.SourceInfo = append(u.SourceInfo, decodeInfo(e))
		case "SourceAlternate":
			u.SourceAlternate = append(u.SourceAlternate, decodeInfo(e))
		case "DeviceInfo":
			u.DeviceInfo = append(u.DeviceInfo, decodeInfo(e))
		case "DestinationInfo":
			u.DestinationInfo = append(u.DestinationInfo, decodeInfo(e))
		case "DestinationAlternate":
			u.DestinationAlternate = append(u.DestinationAlternate, decodeInfo(e))
		case "Group":
			rest, err := keepUnmodeled(e, "GroupId", func(g *node) { u.GroupID = g.value() })
			if err != nil {
				return u, err
			}
			u.Extra = append(u.Extra, rest...)
		case "UsageDetail":
			if err := decodeUsageDetail(e, &u); err != nil {
				return u, err
			}
		case "TerminationCause":
			tc, err := decodeTermCause(e)
			if err != nil {
				return u, err
			}
			u.TermCauses = append(u.TermCauses, tc)
		case "SetupAttempt":
			u.SetupAttempt = decodeCount(e)
		case "TotalSetupAttempts":
			u.TotalSetupAttempts = decodeCount(e)
		case "Service":
			u.ServiceType = decodeService(e)
		case "Statistics":
			u.Statistics = append(u.Statistics, decodeElement(e))
		case "CustomerId":
			u.CustomerID = e.value()
		case "DeviceId":
			u.DeviceID = e.value()
		default:
			if err := checkUnknown(e); err != nil {
				return u, err
			}
			u.Extra = append(u.Extra, decodeElement(e))
		}
	}
	return u, nil
}

// keepUnmodeled calls use with each child of n named modeled and returns
// the other children (refused as checkUnknown refuses) as a copy of n
// holding just them, or nothing when there are none.
func keepUnmodeled(n *node, modeled string, use func(*node)) ([]Element, error) {
	var rest []Element
	for c := range n.children {
		if c.name == modeled {
			use(c)
			continue
		}
		if err := checkUnknown(c); err != nil {
			return nil, err
		}
		rest = append(rest, decodeElement(c))
	}
	if len(rest) == 0 {
		return nil, nil
	}
	e := Element{Name: n.name, Value: n.value(), Children: rest}
	for _, a := range n.attrs {
		e.Attrs = append(e.Attrs, Attr{a.name, a.value})
	}
	return []Element{e}, nil
}

func decodeUsageDetail(n *node, u *Usage) error {
	var amount time.Duration
	var incr uint64 = 1
	var err error
	for e := range n.children {
		switch e.name {
		case "Amount":
			if amount, err = decodeSeconds(e); err != nil {
				return err
			}
		case "Increment":
			if incr, err = decodeUint(e); err != nil {
				return err
			}
			if incr == 0 || incr > 3600 {
				return perr(ErrInvalidValue, "<Increment> %d outside 1 to 3600", incr)
			}
		case "Unit":
			if e.value() != "s" {
				return perr(ErrInvalidValue, "<Unit> %q, only \"s\" is supported", e.value())
			}
		case "SignalingProtocol":
			in := decodeInfo(e)
			u.Protocols = append(u.Protocols, in)
			if u.Protocol.Value == "" || protocolRank(in.Type) > protocolRank(u.Protocol.Type) {
				u.Protocol = in
			}
		case "StartTime":
			if u.StartTime, err = decodeTime(e); err != nil {
				return err
			}
		case "EndTime":
			if u.EndTime, err = decodeTime(e); err != nil {
				return err
			}
		case "AlertTime":
			if u.AlertTime, err = decodeTime(e); err != nil {
				return err
			}
		case "ConnectTime":
			if u.ConnectTime, err = decodeTime(e); err != nil {
				return err
			}
		case "PostDialDelay":
			d, err := decodeSeconds(e)
			if err != nil {
				return err
			}
			if t, _ := e.attr("type"); t == "destination" {
				u.ProviderPostDialDelay, u.HasProviderPostDialDelay = d, true
			} else {
				u.PostDialDelay, u.HasPostDialDelay = d, true
			}
		case "ReleaseSource":
			u.ReleaseSource = e.value()
		case "TerminationCause":
			tc, err := decodeTermCause(e)
			if err != nil {
				return err
			}
			u.TermCauses = append(u.TermCauses, tc)
		case "Statistics":
			u.Statistics = append(u.Statistics, decodeElement(e))
		default:
			if err := checkUnknown(e); err != nil {
				return err
			}
			u.ExtraDetail = append(u.ExtraDetail, decodeElement(e))
		}
	}
	if amount > maxSeconds*time.Second/time.Duration(incr) {
		return perr(ErrInvalidValue, "<UsageDetail> %s × %d longer than %d seconds", amount, incr, maxSeconds)
	}
	u.Duration = amount * time.Duration(incr)
	return nil
}

// decodeCount reads a counter the toolkit writes as a decimal number
// (SetupAttempt, TotalSetupAttempts): nil when it is not one.
func decodeCount(n *node) *int {
	v, err := decodeInt(n, 1<<31-1)
	if err != nil {
		return nil
	}
	return &v
}

// protocolRank orders the types of a usage's <SignalingProtocol>: the
// destination's is the call's protocol (Usage.Protocol), one without a
// type comes next, any other (source, na) last.
func protocolRank(typ string) int {
	switch typ {
	case "destination":
		return 2
	case "":
		return 1
	}
	return 0
}

// Marshal implements Message, in the toolkit's element order.
func (m *UsageIndication) Marshal() ([]byte, error) {
	w := openMessage(m.MessageID, m.Random, 1024*len(m.Usages)+128)
	for i := range m.Usages {
		u := &m.Usages[i]
		w.open("UsageIndication", "componentId", u.ComponentID)
		w.leafTime("Timestamp", u.Timestamp)
		w.leafOpt("Role", u.Role)
		if u.RoleState != "" {
			w.open("RoleInfo")
			w.leaf("State", u.RoleState)
			w.close("RoleInfo")
		}
		if u.TransactionID != 0 {
			w.leafUint("TransactionId", u.TransactionID)
		}
		if len(u.CallID) > 0 {
			w.leafBin("CallId", u.CallID)
		}
		writeInfos(w, "SourceInfo", u.SourceInfo)
		writeInfos(w, "DeviceInfo", u.DeviceInfo)
		writeInfos(w, "SourceAlternate", u.SourceAlternate)
		writeInfos(w, "DestinationInfo", u.DestinationInfo)
		writeInfos(w, "DestinationAlternate", u.DestinationAlternate)
		if u.SetupAttempt != nil {
			w.leafInt("SetupAttempt", int64(*u.SetupAttempt))
		}
		if u.TotalSetupAttempts != nil {
			w.leafInt("TotalSetupAttempts", int64(*u.TotalSetupAttempts))
		}
		if u.ServiceType != "" {
			writeService(w, u.ServiceType)
		}
		if u.GroupID != "" {
			w.open("Group")
			w.leaf("GroupId", u.GroupID)
			w.close("Group")
		}
		w.open("UsageDetail")
		for _, tc := range u.TermCauses {
			writeTermCause(w, tc)
		}
		if len(u.Protocols) > 0 {
			for _, p := range u.Protocols {
				w.leaf("SignalingProtocol", p.Value, "type", p.Type)
			}
		} else if u.Protocol.Value != "" {
			w.leaf("SignalingProtocol", u.Protocol.Value, "type", u.Protocol.Type)
		}
		if u.HasProviderPostDialDelay || u.ProviderPostDialDelay > 0 {
			w.leaf("PostDialDelay", formatSeconds(u.ProviderPostDialDelay), "type", "destination")
		}
		w.leaf("Amount", formatSeconds(u.Duration))
		w.leaf("Increment", "1")
		w.leaf("Unit", "s")
		w.leafTime("StartTime", u.StartTime)
		w.leafTime("EndTime", u.EndTime)
		w.leafTime("AlertTime", u.AlertTime)
		w.leafTime("ConnectTime", u.ConnectTime)
		if u.HasPostDialDelay || u.PostDialDelay > 0 {
			w.leaf("PostDialDelay", formatSeconds(u.PostDialDelay), "type", "source")
		}
		w.leafOpt("ReleaseSource", u.ReleaseSource)
		for i := range u.Statistics {
			writeElement(w, &u.Statistics[i])
		}
		for i := range u.ExtraDetail {
			writeElement(w, &u.ExtraDetail[i])
		}
		w.close("UsageDetail")
		w.leafOpt("CustomerId", u.CustomerID, "critical", "false")
		w.leafOpt("DeviceId", u.DeviceID, "critical", "false")
		for i := range u.Extra {
			writeElement(w, &u.Extra[i])
		}
		w.close("UsageIndication")
	}
	w.close("Message")
	return w.bytes()
}

// UsageConfirmation answers a UsageIndication message: one <UsageConfirmation>
// per indication, each echoing its componentId (src/ospusagecnf.c). The
// toolkit checks every confirmation's Status is 2xx
// (OSPPTransactionVerifyUsageCnf).
type UsageConfirmation struct {
	MessageID     string
	Random        string
	Confirmations []Confirmation
}

// Confirmation is one <UsageConfirmation> component.
type Confirmation struct {
	ComponentID string
	Timestamp   time.Time
	Status      Status
}

// Kind implements Message.
func (*UsageConfirmation) Kind() Kind { return KindUsageConfirmation }

func decodeUsageCnf(env *envelope) (*UsageConfirmation, error) {
	m := &UsageConfirmation{MessageID: env.messageID, Random: env.random}
	for _, c := range env.comps {
		var cf Confirmation
		var err error
		cf.ComponentID, _ = c.attr("componentId")
		hasStatus := false
		for e := range c.children {
			switch e.name {
			case "Timestamp":
				if cf.Timestamp, err = decodeTime(e); err != nil {
					return nil, err
				}
			case "Status":
				if cf.Status, err = decodeStatus(e); err != nil {
					return nil, err
				}
				hasStatus = true
			default:
				if err := checkUnknown(e); err != nil {
					return nil, err
				}
			}
		}
		if !hasStatus {
			return nil, perr(ErrMissingElement, "<Status>")
		}
		m.Confirmations = append(m.Confirmations, cf)
	}
	return m, nil
}

// Marshal implements Message, with the elements of
// usage-confirmation-accepted.xml.
func (m *UsageConfirmation) Marshal() ([]byte, error) {
	w := openMessage(m.MessageID, m.Random, 200*len(m.Confirmations)+100)
	for _, c := range m.Confirmations {
		w.open("UsageConfirmation", "componentId", c.ComponentID)
		w.leafTime("Timestamp", c.Timestamp)
		writeStatus(w, c.Status)
		w.close("UsageConfirmation")
	}
	w.close("Message")
	return w.bytes()
}

// ConfirmUsage answers ind with st for every indication it holds (StatusOK
// once the records are stored; a refusal makes the toolkit report the usage
// as failed). The answer echoes the messageId and each componentId.
func ConfirmUsage(ind *UsageIndication, st Status, now time.Time) *UsageConfirmation {
	now = now.UTC().Truncate(time.Second)
	c := &UsageConfirmation{MessageID: ind.MessageID, Random: randomAttr()}
	for _, u := range ind.Usages {
		c.Confirmations = append(c.Confirmations, Confirmation{ComponentID: u.ComponentID, Timestamp: now, Status: st})
	}
	return c
}
