package osp

import "strings"

// Number portability: the DestinationInfo types a source device sets with
// OSPPTransactionSetNumberPortability (src/osptransapi.c) after it queried
// a number portability database for the called number (its "dip"). The
// toolkit writes each, when set, as a <DestinationInfo> of its own right
// after the called number, in AuthorizationRequest and UsageIndication
// alike (src/ospauthreq.c OSPPNPRnToElement, OSPPNPCicToElement,
// OSPPNPNpdiToElement; src/ospusageind.c):
//
//	<DestinationInfo type="e164">1678</DestinationInfo>
//	<DestinationInfo type="routingnumber">13243546576</DestinationInfo>
//	<DestinationInfo type="cic">0288</DestinationInfo>
//	<DestinationInfo type="npdi">true</DestinationInfo>
//
// and reads the same three from a <Destination> of an answer
// (src/ospdest.c OSPPDestInfoFromElement: npdi is true when the value is
// "true" in any case), which OSPPTransactionGetNumberPortabilityParameters
// hands to the application.
const (
	TypeRoutingNumber = "routingnumber"
	TypeCIC           = "cic"
	TypeNPDI          = "npdi"
)

// NumberPortability is what a device learned about a called number from a
// number portability query: the number may have moved from the network
// its digits belong to (the donor) to another, whose switch the routing
// number names.
type NumberPortability struct {
	// RoutingNumber is the location routing number (LRN) of the switch
	// that serves the called number now; empty when the number is not
	// ported or the device did not query.
	RoutingNumber string
	// CIC is the carrier identification code of the carrier the call is
	// to be handed to, when the device names one.
	CIC string
	// NPDI is the number portability dip indicator: the device queried
	// (with or without a routing number found). The toolkit writes it only
	// when set.
	NPDI bool
}

// IsZero reports whether np holds nothing.
func (np NumberPortability) IsZero() bool { return np == NumberPortability{} }

// numberPortability reads the number portability qualifiers among
// DestinationInfo elements: the first of each type (the toolkit writes
// each at most once, and never empty).
func numberPortability(infos []Info) NumberPortability {
	var np NumberPortability
	var seen [3]bool
	for _, in := range infos {
		switch in.Type {
		case TypeRoutingNumber:
			if !seen[0] {
				np.RoutingNumber, seen[0] = in.Value, true
			}
		case TypeCIC:
			if !seen[1] {
				np.CIC, seen[1] = in.Value, true
			}
		case TypeNPDI:
			if !seen[2] {
				np.NPDI, seen[2] = strings.EqualFold(in.Value, "true"), true
			}
		}
	}
	return np
}

// writeNumberPortability writes np as the toolkit does: a DestinationInfo
// per value set, routing number, CIC, then npdi (only when true).
func writeNumberPortability(w *xmlWriter, np NumberPortability) {
	w.leafOpt("DestinationInfo", np.RoutingNumber, "type", TypeRoutingNumber)
	w.leafOpt("DestinationInfo", np.CIC, "type", TypeCIC)
	if np.NPDI {
		w.leaf("DestinationInfo", "true", "type", TypeNPDI)
	}
}

// valid checks what an answer and its tokens echo: the routing number and
// CIC are stored by the toolkit like numbers (NPRn is a 132-byte buffer;
// NPCic holds 256, but a CIC is a few digits), so validNumber applies to
// each that is set.
func (np NumberPortability) valid() bool {
	return (np.RoutingNumber == "" || validNumber(np.RoutingNumber) == nil) &&
		(np.CIC == "" || validNumber(np.CIC) == nil)
}

// size is a little more than writing np takes (unless values need
// escaping).
func (np NumberPortability) size() int {
	if np.IsZero() {
		return 0
	}
	return 160 + len(np.RoutingNumber) + len(np.CIC)
}

// NumberPortability returns the number portability data the request
// carries for the called number (OSPPTransactionSetNumberPortability).
func (r *AuthorizationRequest) NumberPortability() NumberPortability {
	return numberPortability(r.DestinationInfo)
}

// NumberPortability returns the number portability data the usage
// carries: the toolkit reports what the transaction was given, by the
// source device before its authorization or by the terminating device.
func (u *Usage) NumberPortability() NumberPortability {
	return numberPortability(u.DestinationInfo)
}
