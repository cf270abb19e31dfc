package osp

import "strings"

// Query services: a source device sets one with
// OSPPTransactionSetServiceType to ask the clearinghouse about a call
// instead of for routes — the routing number of a ported called number
// (Asterisk's osp.conf srvtype=npquery, the OpenSIPS/Kamailio module's
// service_type 1), the caller's name (2), a STIR/SHAKEN identity (3). It
// names the destination it asks about as its preferred destination and
// takes one destination from the answer, reading the data from it
// (OSPPTransactionGetNumberPortabilityParameters, GetCNAM, GetIdentity).
const (
	ServicePortedNumberQuery ServiceType = "portedNumberQuery"
	ServiceCNAMQuery         ServiceType = "cnamQuery"
	ServiceSTIRQuery         ServiceType = "stirQuery"
)

// IsQuery reports whether the request asks for a query service, not for
// the routes of a call. Authorize answers it 501: it has none of the data
// a query asks for, and routes in its place would be taken as the answer
// (Asterisk in npquery mode dials the destination it gets; a missing
// routing number reads as a number that is not ported).
func (r *AuthorizationRequest) IsQuery() bool {
	for _, q := range [...]ServiceType{ServicePortedNumberQuery, ServiceCNAMQuery, ServiceSTIRQuery} {
		if strings.EqualFold(r.Service, q) {
			return true
		}
	}
	return false
}
