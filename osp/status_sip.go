package osp

// SIPCause is the response-level <TerminationCause type="sip"> a refusal of
// an AuthorizationRequest carries: the SIP response a proxy should send the
// caller. The OSP Toolkit reads it from the AuthorisationResponse
// (OSPPAuthRspFromElement → OSPPTermCauseFromElement: attribute type,
// children TCCode and Description) and hands it to the gateway after the
// failed authorization (OSPPTransactionHasTermCause / GetTCCode /
// GetTCDesc, only in state OSPC_AUTH_REQUEST_FAIL); the OpenSIPS OSP module
// makes it the call's reply. Without it each gateway picks its own reply
// for the toolkit's error code. ok is false for a success and for a status
// this table does not know: those carry none.
//
//	401 unauthorised, 403 route blocked, 405 may not originate,
//	420/421/423 security, 428 calling invalid, 484 filtered   → 403 Forbidden
//	404 no route found                                         → 404 Not Found
//	489 destination info invalid                               → 484 Address Incomplete
//	441 call rate exceeded, 503 service not available,
//	510 transient server problem                               → 503 Service Unavailable
//	501 unimplemented                                          → 501 Not Implemented
//	400, 410, 411, 412 (the gateway's OSP message),
//	500 internal server error, 530 time problem                → 500 Server Internal Error
//	603 decline                                                → 603 Decline
func SIPCause(st Status) (TermCause, bool) {
	code, ok := sipCauses[st.Code]
	if !ok {
		return TermCause{}, false
	}
	return TermCause{Type: TermCauseSIP, Code: code, Description: sipReasons[code]}, true
}

// TermCauseSIP is the type of a SIP termination cause (the toolkit's
// OSPC_TCAUSE_SIP, src/ospfail.c OSPV_TCTYPE_DESCS).
const TermCauseSIP = "sip"

// sipCauses maps an OSP refusal status to the SIP response code.
var sipCauses = map[int]int{
	400: 500, 410: 500, 411: 500, 412: 500,
	401: 403, 403: 403, 405: 403, 420: 403, 421: 403, 423: 403, 428: 403, 484: 403,
	404: 404,
	441: 503, 503: 503, 510: 503,
	489: 484,
	500: 500, 530: 500,
	501: 501,
	603: 603,
}

// sipReasons are the RFC 3261 reason phrases of the codes above.
var sipReasons = map[int]string{
	403: "Forbidden",
	404: "Not Found",
	484: "Address Incomplete",
	500: "Server Internal Error",
	501: "Not Implemented",
	503: "Service Unavailable",
	603: "Decline",
}

// refusedWith sets a refusal's status and its SIP termination cause.
func (r *AuthorisationResponse) refusedWith(st Status) *AuthorisationResponse {
	r.Status = st
	r.TermCause = nil
	if tc, ok := SIPCause(st); ok {
		r.TermCause = &tc
	}
	return r
}
