package osp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Status is the <Status> of an OSP answer: a numeric code and a free text
// description. Codes 200-299 are success. The OSP Toolkit only reads the
// code: OSPM_STATUSCODE_SUCCESSFUL (include/osp/ospstatus.h) accepts
// 200-299, and OSPPUtilGetErrorFromStatus (src/osputils.c) turns any other
// code into one of its OSPC_ERR_TRAN_* errors; the description is stored and
// never interpreted.
type Status struct {
	Code        int
	Description string
}

// OK reports whether the status is a success (2xx).
func (s Status) OK() bool { return s.Code >= 200 && s.Code <= 299 }

func (s Status) String() string { return strconv.Itoa(s.Code) + " " + s.Description }

// The status codes this package uses, as ETSI TS 101 321 defines them and as
// the OSP Toolkit 4.33.1 maps them (OSPPUtilGetErrorFromStatus). The comment
// names the toolkit error the code becomes on the device.
var (
	StatusOK = Status{200, "success"}

	StatusBadRequest           = Status{400, "bad request"}                      // OSPC_ERR_TRAN_BAD_REQUEST (11482)
	StatusUnauthorized         = Status{401, "unauthorised"}                     // OSPC_ERR_TRAN_UNAUTHORIZED (11483)
	StatusRouteBlocked         = Status{403, "route blocked"}                    // OSPC_ERR_TRAN_ROUTE_BLOCKED (11510)
	StatusNoRoute              = Status{404, "no route found"}                   // OSPC_ERR_TRAN_ROUTE_NOT_FOUND (11503)
	StatusMayNotOriginate      = Status{405, "source may not originate"}         // OSPC_ERR_TRAN_MAY_NOT_ORIGINATE (11511)
	StatusEncodingNotSupported = Status{410, "character encoding not supported"} // OSPC_ERR_TRAN_CHAR_ENC_NOT_SUPD (11484)
	StatusParseFailed          = Status{411, "parsing unsuccessful"}             // OSPC_ERR_TRAN_PARS_UNSUCCESSFUL (11485)
	StatusUnsupportedCritical  = Status{412, "unsupported critical element"}     // OSPC_ERR_TRAN_UNSUPD_CRIT_ELEM (11486)
	StatusSecurityProblem      = Status{420, "security problem"}                 // OSPC_ERR_TRAN_SECURITY_PROBLEM (11487)
	StatusSignatureInvalid     = Status{421, "signature invalid"}                // OSPC_ERR_TRAN_SIG_INVALID (11488)
	StatusCertificateInvalid   = Status{423, "certificate invalid"}              // OSPC_ERR_TRAN_CERT_INVALID (11490)
	StatusCallingInvalid       = Status{428, "calling number invalid"}           // OSPC_ERR_TRAN_CALLING_INVALID (11170)
	StatusCallRateExceeded     = Status{441, "call rate exceeded"}               // OSPC_ERR_TRAN_CALL_RATE_EXCEEDED (11512)
	StatusCalledFiltered       = Status{484, "called number filtered"}           // OSPC_ERR_TRAN_CALLED_FILTERING (11515)
	StatusDestinationInvalid   = Status{489, "destination info invalid"}         // OSPC_ERR_TRAN_DESTINATION_INFO_INVALID (11513)

	StatusInternalError      = Status{500, "internal server error"}    // OSPC_ERR_TRAN_INTERNAL_SRVR_ERR (11494)
	StatusUnimplemented      = Status{501, "unimplemented"}            // OSPC_ERR_TRAN_UNIMPLEMENTED (11495)
	StatusServiceUnavailable = Status{503, "service not available"}    // OSPC_ERR_TRAN_SERVICE_NOT_AVAIL (11496)
	StatusTransientProblem   = Status{510, "transient server problem"} // OSPC_ERR_TRAN_TRANSIENT_SRVR_PROB (11497)
	StatusTimeProblem        = Status{530, "time problem"}             // OSPC_ERR_TRAN_TIME_PROB (11499)

	StatusDecline = Status{603, "decline"} // OSPC_ERR_TRAN_DECLINE (11517)
)

// Sentinel errors of the parsers. A parser returns a *ParseError that wraps
// one of them; errors.Is works through it.
var (
	ErrTooLarge         = errors.New("osp: message too large")
	ErrTooDeep          = errors.New("osp: elements nested too deeply")
	ErrTooManyElements  = errors.New("osp: too many elements or attributes")
	ErrDOCTYPE          = errors.New("osp: DOCTYPE and other markup declarations are refused")
	ErrMalformed        = errors.New("osp: malformed XML")
	ErrEncoding         = errors.New("osp: character encoding not supported")
	ErrCriticalElement  = errors.New("osp: unsupported critical element")
	ErrMissingElement   = errors.New("osp: mandatory element missing")
	ErrInvalidValue     = errors.New("osp: invalid element value")
	ErrUnknownMessage   = errors.New("osp: unknown message")
	ErrUnsupported      = errors.New("osp: message type not supported")
	ErrUnexpectedKind   = errors.New("osp: unexpected message type")
	ErrTokenInfoWrapped = errors.New("osp: TokenInfo must be the root element")
)

// ParseError is the error of every parser in this package. Status is what
// an answer refusing the message should carry; Kind, MessageID and
// ComponentIDs are filled in as far as the parser got, so that a refusal
// can echo them (see RefusalFor).
type ParseError struct {
	Status       Status
	Kind         Kind
	MessageID    string
	ComponentIDs []string
	Err          error  // one of the sentinel errors above
	Detail       string // human readable detail, may be empty
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Kind != KindUnknown {
		fmt.Fprintf(&b, " (in %s)", e.Kind)
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// statusFor maps a sentinel parse error to the status refusing it.
func statusFor(err error) Status {
	switch {
	case errors.Is(err, ErrEncoding):
		return StatusEncodingNotSupported
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrDOCTYPE):
		return StatusParseFailed
	case errors.Is(err, ErrCriticalElement):
		return StatusUnsupportedCritical
	case errors.Is(err, ErrUnsupported):
		return StatusUnimplemented
	default:
		return StatusBadRequest
	}
}

func perr(sentinel error, format string, args ...any) *ParseError {
	return &ParseError{Status: statusFor(sentinel), Err: sentinel, Detail: clipDetail(fmt.Sprintf(format, args...))}
}

// maxDetail bounds a ParseError's detail: it quotes values of the message,
// which anyone who can reach the server chooses, and ends up in logs.
const maxDetail = 200

func clipDetail(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// StatusOf returns the status that answers err: the Status of a
// *ParseError, StatusBadRequest for ErrTokenTooLarge, StatusOK for nil,
// StatusInternalError otherwise.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Status
	}
	if errors.Is(err, ErrTokenTooLarge) {
		return StatusBadRequest
	}
	return StatusInternalError
}
