package wire

import "strconv"

// Status codes of the `status=` answer variable.
//
// 0 and 1 are fixed by the seed (Tables 3, 5, 6) and by the OSP Toolkit's
// enroll client (OSPC_ENROLL_STATUS_OK, OSPC_ENROLL_STATUS_PENDING). Every
// failure is ≥ 2: the toolkit uses 2 as its own default failure value
// (OSPC_ENROLL_STATUS_FAILURE_DEFAULT) and exits with the status as its process
// exit code, so a failure must never look like 0 or 1 and must stay below 256.
const (
	StatusOK                   = 0  // certificate issued, or CA certificate returned
	StatusPending              = 1  // request stored, waiting for approval
	StatusBadRequest           = 2  // malformed form, missing variable, bad CSR encoding
	StatusBadCredentials       = 3  // unknown username or wrong password
	StatusEnrollmentDisabled   = 4  // the configuration file says `enroll disabled`
	StatusUnknownDevice        = 5  // the CSR names no device of the configuration file
	StatusDeviceDisabled       = 6  // the device exists but is disabled
	StatusBadCSR               = 7  // CSR signature, key policy or name mismatch
	StatusRejected             = 8  // an administrator rejected the request
	StatusNonceReused          = 9  // nonce reused with a different CSR or device
	StatusRateLimited          = 10 // too many requests; try later
	StatusNotFound             = 11 // retrieve without a matching request
	StatusSSLRequired          = 12 // request over plain HTTP while `ssl enabled`
	StatusCustomerMismatch     = 13 // customer/device ids differ from those recorded
	StatusServerError          = 14 // internal error on the server
	StatusUnsupportedOperation = 15 // operation is not getcacert, request or retrieve
)

// StatusInfo describes one row of the status table.
type StatusInfo struct {
	Code    int    // value of `status=`
	Name    string // Go-style name, e.g. "BadCSR"
	Text    string // short reason, suitable for `error=`
	Meaning string // one sentence for documentation
}

var statusTable = [...]StatusInfo{
	{StatusOK, "OK", "ok", "The certificate was issued (request/retrieve) or the CA certificate is returned (getcacert); the answer carries certificate=."},
	{StatusPending, "Pending", "pending", "The request is stored and waits for approval; retrieve it later. The answer may carry nonce=."},
	{StatusBadRequest, "BadRequest", "bad request", "The body is not a well-formed form, a required variable is missing or malformed, or the CSR is not valid base64/DER."},
	{StatusBadCredentials, "BadCredentials", "bad credentials", "The username is unknown or the password is wrong."},
	{StatusEnrollmentDisabled, "EnrollmentDisabled", "enrollment disabled", "Enrollment is disabled in the configuration file (`enroll disabled`); getcacert still works."},
	{StatusUnknownDevice, "UnknownDevice", "unknown device", "The CSR names (subject CN or first DNS name) no device of the configuration file, and the server refuses unknown devices."},
	{StatusDeviceDisabled, "DeviceDisabled", "device disabled", "The device is configured but disabled."},
	{StatusBadCSR, "BadCSR", "bad certificate request", "The PKCS#10 request parsed but failed checks: signature, key type/size policy, or subject name mismatch."},
	{StatusRejected, "Rejected", "rejected", "An administrator rejected the request."},
	{StatusNonceReused, "NonceReused", "nonce reused", "The nonce was already used with a different CSR or device."},
	{StatusRateLimited, "RateLimited", "rate limited", "Too many requests from this account, device or address, or too many requests pending approval; try again later."},
	{StatusNotFound, "NotFound", "not found", "retrieve found no matching pending or issued request."},
	{StatusSSLRequired, "SSLRequired", "ssl required", "The request came over plain HTTP but the configuration says `ssl enabled`."},
	{StatusCustomerMismatch, "CustomerMismatch", "customer mismatch", "The customer or device id differs from the one recorded for this device or request."},
	{StatusServerError, "ServerError", "server error", "An internal error occurred on the server; the request may be retried."},
	{StatusUnsupportedOperation, "UnsupportedOperation", "unsupported operation", "The operation is not one of getcacert, request, retrieve."},
}

// Statuses returns the status table in code order (a fresh copy each call).
func Statuses() []StatusInfo {
	out := make([]StatusInfo, len(statusTable))
	copy(out, statusTable[:])
	return out
}

// StatusText returns the short reason for a status code, e.g. "bad request",
// or "status N" for a code outside the table.
func StatusText(code int) string {
	if code >= 0 && code < len(statusTable) {
		return statusTable[code].Text
	}
	return "status " + strconv.Itoa(code)
}

// StatusName returns the Go-style name of a status code, e.g. "BadCSR", or ""
// for a code outside the table.
func StatusName(code int) string {
	if code >= 0 && code < len(statusTable) {
		return statusTable[code].Name
	}
	return ""
}
