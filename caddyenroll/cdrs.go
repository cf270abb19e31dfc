package caddyenroll

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// CDR is one call detail record: a device's UsageIndication for one call
// leg, as stored (with `cdrs enabled`) under clearinghouse/cdrs/.
type CDR struct {
	TransactionID uint64 `json:"transaction_id"`
	// TransactionIssued says whether an authorization of this
	// clearinghouse made the transaction id (transactions.go); nil in
	// records of earlier versions, which did not tell.
	TransactionIssued *bool `json:"transaction_issued,omitempty"`
	// TransactionSource is the device whose authorization made the
	// transaction (its source), as the configuration file named it when
	// the record was stored, when the transaction id names one (ids of
	// this version; see transactions.go); empty otherwise. A record whose
	// reporter is neither it nor the destination device the source's own
	// record names is of a device that was not part of the call.
	TransactionSource string `json:"transaction_source,omitempty"`
	Role              string `json:"role"`
	RoleState         string `json:"role_state,omitempty"` // start, stop, interim…: which report of the call
	Reporter          string `json:"reporter"`             // the device that reported it
	CallID            string `json:"call_id"`              // base64
	Calling           string `json:"calling"`
	Called            string `json:"called"`
	Destination       string `json:"destination,omitempty"` // signal address or device the call went to
	// DestinationDevice is the destination's <DestinationAlternate
	// type="network">: the device (or trunk group) the answer named, which
	// tells apart devices that share a signal address.
	DestinationDevice string    `json:"destination_device,omitempty"`
	Duration          float64   `json:"duration_seconds"`
	StartTime         time.Time `json:"start_time,omitzero"`
	AlertTime         time.Time `json:"alert_time,omitzero"`
	ConnectTime       time.Time `json:"connect_time,omitzero"`
	EndTime           time.Time `json:"end_time,omitzero"`
	// PostDialDelay is the reporting device's own delay (<PostDialDelay
	// type="source">), nil when it reported none: 0 is a delay it
	// measured. Records of earlier versions left a delay of 0 out, so in
	// those nil may be 0 too.
	PostDialDelay *float64 `json:"post_dial_delay_seconds,omitempty"`
	// ProviderPostDialDelay is the delay the device was told of by the
	// destination's provider (<PostDialDelay type="destination">); nil
	// as PostDialDelay.
	ProviderPostDialDelay *float64 `json:"provider_post_dial_delay_seconds,omitempty"`
	ReleaseSource         string   `json:"release_source,omitempty"`
	// TermCauses are the <TerminationCause>s, each "type:code:description"
	// (q850:41:temporary failure): the description exactly as reported,
	// the type with "\" and ":" written "\\" and "\:" (the toolkit's are
	// q850, h323, sip, xmpp), so that the first unescaped ":" ends it and
	// no type can forge another code.
	TermCauses []string  `json:"term_causes,omitempty"`
	Protocol   string    `json:"protocol,omitempty"`
	Received   time.Time `json:"received"`

	// The fields below are kept since this version; records of earlier
	// versions do not have them.

	// Timestamp is the indication's <Timestamp>: when the device built the
	// report, by its clock. A device that reports again after a failed
	// report sends a later one, and the record keeps the first stored.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// CustomerID and DeviceID are <CustomerId> and <DeviceId>, the
	// clearinghouse ids the device is configured with (the toolkit's
	// provider's, which it enrolled with), as it reports them.
	CustomerID string `json:"customer_id,omitempty"`
	DeviceID   string `json:"device_id,omitempty"`
	// SetupAttempt is <SetupAttempt>, which attempt at the destination
	// this was, and TotalSetupAttempts <TotalSetupAttempts>, the attempts
	// the call took: nil when not reported (0 is a value).
	SetupAttempt       *int `json:"setup_attempt,omitempty"`
	TotalSetupAttempts *int `json:"total_setup_attempts,omitempty"`
	// GroupID is <Group><GroupId>: the conference id the toolkit's
	// application gave with the usage.
	GroupID string `json:"group_id,omitempty"`
	// ServiceType is <Service><ServiceType type>: voice, video…
	ServiceType string `json:"service_type,omitempty"`
	// Statistics are the values of <Statistics> (packets lost, delay,
	// jitter, MOS…), each named by its path as osp.FlattenAll names
	// it ("LossSent.Packets": "1"), as the device wrote them.
	Statistics map[string]string `json:"statistics,omitempty"`

	// The number portability data the device reported with the call
	// (osp.Usage.NumberPortability): RoutingNumber is the routing number
	// of a ported called number (<DestinationInfo type="routingnumber">,
	// which the call was routed on; Called stays the dialed number), CIC
	// the carrier identification code, NPDI that the device queried the
	// number portability database (the toolkit reports it only when
	// set). Empty and false in records of earlier versions.
	RoutingNumber string `json:"routing_number,omitempty"`
	CIC           string `json:"cic,omitempty"`
	NPDI          bool   `json:"npdi,omitempty"`

	// Details are the rest of what the device reported, which a
	// clearinghouse's settlement may need, each value named by its path
	// as osp.FlattenAll names it (see cdrDetails): the elements no field
	// above holds ("CallingPartyInfo.UserId", "Codec[service:voice,type:source]",
	// "PricingIndication.Amount", "SessionId[encoding:base64,type:source]",
	// …), every <SignalingProtocol> ("SignalingProtocol[type:na]"), and
	// every address element whole ("SourceAlternate[type:network]",
	// "DestinationInfo[type:spid]", …). Values are as the device wrote
	// them (base64 stays base64). Absent in records of earlier versions.
	Details map[string]string `json:"details,omitempty"`

	// ReportedDuration is the duration as the device reported it, when
	// Duration is not that (secondsAsMilliseconds: a gateway that gave the
	// toolkit seconds where it takes milliseconds); nil otherwise.
	ReportedDuration *float64 `json:"reported_duration_seconds,omitempty"`
}

// cdrExport is a CDR as the JSON export writes it: the transaction id as
// a decimal string, as nearly every id (63 random bits) is above 2^53,
// where float64 JSON readers (JavaScript, jq 1.6) lose digits (RFC 8259
// section 6). Storage keeps the number.
type cdrExport struct {
	TransactionID string `json:"transaction_id"`
	CDR
}

func cdrFromUsage(u *osp.Usage, reporter string, now time.Time) CDR {
	c := CDR{
		TransactionID: u.TransactionID, Role: u.Role, RoleState: u.RoleState, Reporter: reporter,
		CallID:  base64.StdEncoding.EncodeToString(u.CallID),
		Calling: u.Calling().Value, Called: u.Called().Value,
		Duration: u.Duration.Seconds(), StartTime: u.StartTime, AlertTime: u.AlertTime,
		ConnectTime: u.ConnectTime, EndTime: u.EndTime,
		PostDialDelay:         cdrDelay(u.PostDialDelay, u.HasPostDialDelay),
		ProviderPostDialDelay: cdrDelay(u.ProviderPostDialDelay, u.HasProviderPostDialDelay),
		ReleaseSource:         u.ReleaseSource, Protocol: u.Protocol.Value, Received: now.UTC(),
		Timestamp: u.Timestamp, CustomerID: u.CustomerID, DeviceID: u.DeviceID,
		SetupAttempt: u.SetupAttempt, TotalSetupAttempts: u.TotalSetupAttempts,
		GroupID: u.GroupID, ServiceType: u.ServiceType,
	}
	if len(u.Statistics) > 0 {
		c.Statistics = osp.FlattenAll(u.Statistics)
	}
	c.Details = cdrDetails(u)
	if secondsAsMilliseconds(u.Duration, u.ConnectTime, u.EndTime) {
		reported := c.Duration
		c.ReportedDuration, c.Duration = &reported, (u.Duration * 1000).Seconds()
	}
	np := u.NumberPortability()
	c.RoutingNumber, c.CIC, c.NPDI = np.RoutingNumber, np.CIC, np.NPDI
	// the toolkit's <DeviceInfo> is the source device (the reporting
	// gateway for role source, the calling one for role destination):
	// never where the call went
	for _, in := range u.DestinationAlternate {
		if in.Value != "" && (in.Type == "transport" || in.Type == "network") {
			c.Destination = in.Value
			break
		}
	}
	for _, in := range u.DestinationAlternate {
		if in.Type == "network" && in.Value != "" {
			c.DestinationDevice = in.Value
			break
		}
	}
	for _, tc := range u.TermCauses {
		c.TermCauses = append(c.TermCauses, cdrTermCause(tc))
	}
	return c
}

// secondsAsMilliseconds reports whether a call's reported duration is a
// count of seconds that the toolkit took for milliseconds. Since 4.26 its
// OSPPTransactionReportUsage takes the duration in milliseconds (and
// writes it divided by 1000), but Asterisk's res_osp and FreeSWITCH's
// mod_osp still pass seconds (difftime(end, connect)): a 30 s call comes
// as 0.030 s. The times they pass with it, whole seconds, tell: the
// reported duration times 1000 is the span from connect to end (within a
// second, or 0.1 % for the toolkit's float), and that span is at least 2
// s, which no duration a gateway measured right comes near (it would be
// a thousandth of the span).
func secondsAsMilliseconds(reported time.Duration, connect, end time.Time) bool {
	if reported <= 0 || connect.IsZero() || end.IsZero() {
		return false
	}
	span := end.Sub(connect)
	if span < 2*time.Second || reported > span/500 {
		return false // (and reported*1000 cannot overflow)
	}
	diff := reported*1000 - span
	if diff < 0 {
		diff = -diff
	}
	return diff <= max(time.Second, span/1000)
}

// cdrDetails flattens what of u the other fields of a CDR do not hold,
// or hold in part, into CDR.Details: the address elements whole (the
// columns take one value of a type from them: the calling and called
// numbers, the destination; the network and switch ids, proxy addresses,
// operator names… are only here), the elements osp.Usage keeps unmodeled
// (Extra, ExtraDetail) and every <SignalingProtocol> (Protocol is the
// call's). nil when there are none.
func cdrDetails(u *osp.Usage) map[string]string {
	var es []osp.Element
	infos := func(name string, list []osp.Info) {
		for _, in := range list {
			e := osp.Element{Name: name, Value: in.Value}
			if in.Type != "" {
				e.Attrs = []osp.Attr{{Name: "type", Value: in.Type}}
			}
			es = append(es, e)
		}
	}
	infos("SourceInfo", u.SourceInfo)
	infos("DeviceInfo", u.DeviceInfo)
	infos("SourceAlternate", u.SourceAlternate)
	infos("DestinationInfo", u.DestinationInfo)
	infos("DestinationAlternate", u.DestinationAlternate)
	es = append(es, u.Extra...)
	infos("SignalingProtocol", u.Protocols)
	es = append(es, u.ExtraDetail...)
	if len(es) == 0 {
		return nil
	}
	return osp.FlattenAll([]osp.Element{{Children: es}})
}

// cdrTermCause writes a termination cause as CDR.TermCauses holds it.
func cdrTermCause(tc osp.TermCause) string {
	typ := strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace(tc.Type)
	return typ + ":" + strconv.Itoa(tc.Code) + ":" + tc.Description
}

// cdrDelay is a delay the device reported (has, or above 0), in seconds,
// or nil.
func cdrDelay(d time.Duration, has bool) *float64 {
	if !has && d <= 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}
