// Package osp speaks the Open Settlement Protocol (OSP, ETSI TS 101 321) as
// the clearinghouse server: it parses what devices send, builds and writes
// the answers, and issues and checks the authorisation tokens. It is pure
// Go and knows nothing of Caddy or HTTP; the judge of every byte it writes
// is the reference client, the unmodified OSP Toolkit 4.33.1 (TransNexus),
// whose sources are cited as src/….c.
//
// # The protocol
//
// A source device (a proxy or originating gateway) that wants to place an
// IP telephony call asks the clearinghouse for authorisation and routing;
// the answer lists terminating gateways able to complete the call, each
// with an authorisation token. The source tries them in order and passes
// the token along in the call set-up; the terminating gateway, which takes
// calls only with a valid token, checks it locally (no round trip to the
// clearinghouse) and completes the call. Afterwards both ends report the
// call's usage (the seed patent's claim 1: "the proxy server gains access
// to a terminating gateway only with the electronic authorization token").
//
// Messages are XML documents POSTed over HTTP(S): a <Message messageId=…
// random=…> holding one or more components <Kind componentId=…>:
//
//	request                  answer                    this package
//	AuthorizationRequest     AuthorisationResponse     ParseRequest, Authorize, Refuse
//	UsageIndication (1..n)   UsageConfirmation (1..n)  ParseRequest, ConfirmUsage
//	ReauthorizationRequest   ReauthorizationResponse   ParseRequest, Reauthorize
//	CapabilitiesIndication   CapabilitiesConfirmation  ParseRequest, ConfirmCapabilities
//
// The standard spells both Authorisation and Authorization, and the toolkit
// takes both for AuthorizationRequest and AuthorisationResponse (it sends
// AuthorizationRequest); it knows the reauthorization answer only as
// ReauthorizationResponse, which is what Marshal writes. Answers echo the
// request's messageId and componentId(s); a UsageIndication message may
// batch several indications, each confirmed by its own UsageConfirmation.
// AuthorizationIndication/Confirmation and PricingIndication/Confirmation
// are refused (ErrUnsupported; the handler answers HTTP 400, as there is no
// answer element for them).
//
// # What the toolkit requires of an answer
//
// From src/ospauthrsp.c, ospdest.c, ospmsgutil.c, ospxmlparse.c,
// osptransapi.c and osphttp.c, and checked against test_app in the tests:
//
//   - The first child of <Message> is the component. Status (Code 2xx for
//     success) is mandatory: the toolkit dereferences it unchecked.
//   - Every element the toolkit does not handle in that place and that is
//     not marked critical="false" makes it refuse the whole answer; Marshal
//     writes only handled elements.
//   - Values are the bytes between the tags, not trimmed (element values
//     have the five predefined entities and character references decoded,
//     OSPPXMLUnescape; attribute values are taken raw): times must be exactly YYYY-MM-DDThh:mm:ssZ (read at fixed
//     offsets), TransactionId is read digit by digit, Unit is compared
//     with "s". Marshal writes values without surrounding whitespace and a
//     newline after each tag, like the answers the toolkit accepted.
//   - CallId and Token are base64 with encoding="base64".
//   - A Destination gives DestinationSignalAddress ("[ip]:port", at most
//     255 bytes: the toolkit stores 261, but gateways read it into 256),
//     Token, CallId, ValidAfter/ValidUntil, and a UsageDetail with
//     Amount, Increment and Unit "s" (the call time limit); calling
//     and called numbers are copied into 132-byte buffers without a
//     terminator beyond that, so Authorize refuses longer ones.
//   - A calling number may be empty: the toolkit refuses only NULL
//     (OSPPTransactionRequestAuthorisation), and for a call without caller
//     id Asterisk (app_osplookup turns a NULL caller number into ""), FreeSWITCH
//     (mod_osp: an empty caller id number) and OpenSIPS/Kamailio (the
//     user part of a From URI without one) send "". Authorize routes such
//     a call; its tokens carry an empty SourceInfo, which the terminating
//     gateway compares (strcmp) with the call's calling number, "" too.
//     An anonymous caller's From user ("anonymous", RFC 3323) is an
//     ordinary calling number. An empty called number is refused (489).
//   - A Destination's SignalingProtocol is one of the toolkit's names,
//     compared case-sensitively (Protocols: "sip", "h323-Q931", "iax"…;
//     any other is OSPC_PROTNAME_UNKNOWN); OSPVersion "0.0.0" says the
//     destination is not an OSP device (OSPPTransactionIsDestOSPEnabled,
//     and the gateways send it no token). Such a destination needs no
//     Token if its UsageDetail names a service ("voice"): Authorize gives
//     Destination.NonOSP none; a reauthorization answer always needs one.
//   - TransactionId is kept and reported back in usage indications and
//     reauthorization (whose answer must carry the same one). The toolkit
//     treats it as an opaque 64-bit number, so a clearinghouse may give it
//     structure: TransactionIDs puts a MAC in it, to tell later whether a
//     usage indication or reauthorization is for a transaction it
//     authorized, and for which source device.
//   - Transport (for the HTTP handler): the body is read by its
//     Content-Length (a chunked answer fails with 14220), Content-Type
//     text/plain (ContentType), on a keep-alive connection, not compressed.
//
// The toolkit turns a refusal Status into its own error code
// (OSPPUtilGetErrorFromStatus). The codes used here:
//
//	200 success                       OK
//	400 bad request                   11482  request invalid, limit exceeded
//	401 unauthorised                  11483  device not allowed
//	403 route blocked                 11510
//	404 no route found                11503  no destination
//	405 source may not originate      11511
//	410 character encoding unsupported 11484 encoding other than UTF-8/ASCII
//	411 parsing unsuccessful          11485  malformed XML, DOCTYPE
//	412 unsupported critical element  11486  unknown element not critical="false"
//	420 security problem              11487
//	421 signature invalid             11488
//	423 certificate invalid           11490
//	428 calling number invalid        11170  calling number unusable
//	441 call rate exceeded            11512
//	484 called number filtered        11515
//	489 destination info invalid      11513  called number unusable
//	500 internal server error         11494  the server failed
//	501 unimplemented                 11495  component not supported
//	503 service not available         11496
//	510 transient server problem      11497
//	530 time problem                  11499
//	603 decline                       11517
//
// A refusal of an AuthorizationRequest (Refuse, Authorize) also carries a
// response-level <TerminationCause type="sip"> with TCCode and Description:
// the SIP response a proxy should send the caller, which the toolkit hands
// to the gateway after the failed authorization
// (OSPPTransactionGetTCCode / GetTCDesc; the OpenSIPS module replies with
// it). SIPCause has the table:
//
//	401, 403, 405, 420, 421, 423, 428, 484  403 Forbidden
//	404 no route found                      404 Not Found
//	489 destination info invalid            484 Address Incomplete
//	441, 503, 510                           503 Service Unavailable
//	501 unimplemented                       501 Not Implemented
//	400, 410, 411, 412, 500, 530            500 Server Internal Error
//	603 decline                             603 Decline
//
// Any other status carries none, and so do reauthorization refusals: the
// toolkit's ReauthorizationResponse parser does not handle the element and
// would refuse the answer.
//
// # Parsing
//
// The parsers take at most DefaultLimits (256 KiB, 16 levels, 8192
// elements, 16 attributes per element), refuse DOCTYPE and every other
// markup declaration, undeclared entities, encodings other than UTF-8 and
// US-ASCII, and text or a second element outside the root; errors are
// *ParseError carrying the Status to answer with and, when known, the
// request's kind and ids, so RefusalFor can build the refusal. An element
// a component does not use is skipped when it belongs to the toolkit's
// vocabulary (every element the toolkit writes) or is marked
// critical="false" (a usage indication keeps those whole instead, in
// Usage.Extra and ExtraDetail, for its records); any other is refused with
// 412 — absent the attribute, an element is critical, as in the toolkit
// (OSPPMsgElemIsCritical).
//
// # Tokens
//
// A token's content is a TokenInfo document, the root element <TokenInfo>
// itself (wrapped in <Message>, the toolkit finds nothing in it): calling
// and called number, the destination's signal address, call id, ValidAfter
// and ValidUntil, the transaction id and the call time limit. The toolkit
// compares the numbers and call id with the call, checks the window, and
// refuses a transaction id it has already accepted. Two forms:
//
//   - Unsigned: the TokenInfo XML as is. Anyone who can reach a gateway
//     that accepts unsigned tokens (TOKENALGO 1 or 2) can write one for any
//     call: they authorise nothing and suit closed test networks only.
//   - Signed: CMS SignedData (DER) with the XML attached, signed with the
//     token key (TokenSigner); the gateway checks it with OpenSSL
//     PKCS7_verify(…, PKCS7_NOCHAIN) against the CA certificates it holds,
//     so the token certificate must be issued directly by the operational
//     CA, carry KeyUsage digitalSignature, and have no ExtKeyUsage or one
//     with emailProtection (TokenSigner.Check). With TokenSigner.CASigned
//     the CA's own key signs and no certificate is embedded (no signed
//     attributes either): PKCS7_verify finds the CA among the certificates
//     the gateway holds and checks no key usage; the token is some 0.6 KB
//     smaller, within the 1024 bytes the OpenSIPS/Kamailio OSP modules can
//     send with a P-256 CA. Verifier takes such tokens from CASigners.
//
// A token is valid for DefaultTokenValidity (60 s) after it is issued,
// from TokenBackdate (1 min) before, so a captured token soon expires.
// Within that window a signed token can be replayed to its own
// destination; the toolkit refuses a transaction id twice, and Verifier
// (for gateways written in Go) refuses a token twice through ReplayCache,
// checks the signature and issuer, that the signer certificate is a token
// signer's (no ExtKeyUsage, or one with emailProtection: not a device's,
// clientAuth), optionally pinned, the numbers, call id and destination,
// and the window with a configurable skew, one error per failure. The
// toolkit's PKCS7_NOCHAIN check takes any certificate the CA issued
// directly, device certificates included.
//
// A token whose base64 is longer than MaxTokenBase64 (4077) is never sent:
// the toolkit copies element values into a 4096-byte stack buffer without
// a bounds check (MaxValueBytes, 4095), and Asterisk writes the token
// after its SIP header name "P-OSP-Auth-Token: " into another, cutting a
// longer one short. Authorize refuses such a call (ErrTokenTooLarge, 400).
//
// Reauthorization extends a call only with a token of that call:
// Verifier.VerifyReauthorization checks the token the request carries
// (signature and signer as above, transaction id, numbers and call id as
// the request's, expired for at most MaxReauthorizationDelay, 24 h: the
// toolkit resends the call's first token with every extension)
// and Reauthorize issues the fresh token for that token's destination,
// never one the request names.
//
// # Number portability
//
// A source device that found the called number ported sends the routing
// number (LRN), carrier identification code and dip indicator it got
// (OSPPTransactionSetNumberPortability) as DestinationInfo elements of
// types routingnumber, cic and npdi after the called number, in its
// AuthorizationRequest and UsageIndication;
// AuthorizationRequest.NumberPortability and Usage.NumberPortability read
// them. Which destinations the routing number leads to is the caller's
// routing. Authorize echoes them in each Destination, where
// OSPPTransactionGetNumberPortabilityParameters reads them, and in each
// token, always before the called number: the toolkit takes a token's
// last DestinationInfo, whatever its type, as the number it compares with
// the call's, which must stay the dialed one.
// The operator names a device sets (OSPPTransactionSetOperatorName:
// types spid, altspid, ocn, spn, altspn, mcc, mnc;
// AuthorizationRequest.OperatorNames) are echoed in each Destination too,
// for OSPPTransactionGetOperatorName, but not in the tokens.
//
// # Serving
//
//	req, err := osp.ParseRequest(body)
//	if err != nil {
//		ans, rerr := osp.RefusalFor(err, now) // nil when the kind is unknown: answer HTTP 400
//		…
//	}
//	switch r := req.(type) {
//	case *osp.AuthorizationRequest:
//		ans, err = osp.Authorize(r, routes, signer, now, 0) // on error: osp.Refuse(r, osp.StatusOf(err), now)
//	case *osp.UsageIndication:
//		ans = osp.ConfirmUsage(r, osp.StatusOK, now) // once the records are stored
//	case *osp.ReauthorizationRequest:
//		info, err := verifier.VerifyReauthorization(r) // on error: osp.Refuse(r, osp.StatusUnauthorized, now)
//		…                                              // info's destination still usable and routed to?
//		ans, err = osp.Reauthorize(r, info, osp.Destination{}, signer, now, 0)
//	…
//	}
//	out, err := ans.Marshal() // write with Content-Length and Content-Type osp.ContentType
package osp
