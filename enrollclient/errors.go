package enrollclient

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Sentinel errors; test with errors.Is. The typed errors below match them
// through their Is methods.
var (
	// ErrPendingTimeout: the request is still pending after MaxWait. The
	// pending state is kept in Dir; Enroll (or Poll) resumes it.
	ErrPendingTimeout = errors.New("enrollment request still pending approval")
	// ErrPending: Poll's single retrieve found the request still pending.
	ErrPending = errors.New("enrollment request is pending approval")
	// ErrNoPending: Poll was called with no pending request in Dir.
	ErrNoPending = errors.New("no pending enrollment request")
	// ErrNotEnrolled: Renew found no certificate in Dir.
	ErrNotEnrolled = errors.New("no certificate to renew (enroll first)")
	// ErrFingerprintMismatch: the CA certificate from getcacert is not the one
	// pinned by its SHA-256 fingerprint (*FingerprintMismatchError).
	ErrFingerprintMismatch = errors.New("CA certificate fingerprint mismatch")
	// ErrUntrustedCA: no trust decision was made for the CA certificate (no
	// fingerprint, TrustOnFirstUse off, Confirm absent or refusing);
	// *UntrustedCAError carries the fingerprint to check out of band.
	ErrUntrustedCA = errors.New("CA certificate not trusted")
	// ErrServerNotTrusted: the enrollment server's TLS certificate did not
	// verify against the system roots or RootCAPEM (*ServerTrustError).
	ErrServerNotTrusted = errors.New("server certificate not trusted")
	// ErrBadCertificate: the certificate the server issued does not match
	// the device key, does not chain to the CA certificate, or is otherwise
	// unusable. Nothing was saved (*CertificateError).
	ErrBadCertificate = errors.New("issued certificate rejected")
	// ErrNotValidNow: the issued certificate is right in every respect but
	// its validity period: not yet valid, or expired, by this device's
	// clock, which is most likely wrong. The server has issued it (and may
	// have revoked the certificate it supersedes), so the request and its
	// key are kept in pending.json: once the clock is right, Enroll (Renew,
	// Poll) retrieves and installs the same certificate. A
	// *CertificateError with NotValidNow set; it also matches
	// ErrBadCertificate.
	ErrNotValidNow = errors.New("issued certificate not valid by the device clock")
	// ErrHTTPNotAllowed: an http:// server URL without AllowHTTP.
	ErrHTTPNotAllowed = errors.New("plain HTTP not allowed")
	// ErrConfig: a Client field is missing or invalid.
	ErrConfig = errors.New("invalid client configuration")
	// ErrBusy: another process holds the lock on Dir.
	ErrBusy = errors.New("another enrollment is running in this directory")
	// ErrProtocol: the server's answer is not a valid enrollment answer
	// (HTTP status other than 200, undecodable body, unparsable certificate).
	ErrProtocol = errors.New("enrollment protocol error")
)

// RejectedError is an answer with status ≥ 2 (see wire.Statuses).
type RejectedError struct {
	Op     string // wire.OpGetCACert, wire.OpRequest or wire.OpRetrieve
	Status int    // the `status=` value
	Reason string // the server's `error=` text, if any, as sent (Error escapes what would drive a terminal)
}

func (e *RejectedError) Error() string {
	s := fmt.Sprintf("server refused %s: status %d", e.Op, e.Status)
	if wire.StatusName(e.Status) != "" {
		s += " (" + wire.StatusText(e.Status) + ")"
	} else {
		s += " (not in the protocol's table)"
	}
	if e.Reason != "" && !strings.EqualFold(e.Reason, wire.StatusText(e.Status)) {
		s += ": " + printable(e.Reason)
	}
	return s
}

// Printable makes text that came from the server (a certificate's subject,
// an error message) safe to print on a terminal, as the errors of this
// package are: see printable.
func Printable(s string) string { return printable(s) }

// printable makes text from the server safe to print on a terminal: tabs
// and line breaks become spaces; other control characters (escape
// sequences), invalid UTF-8 and characters that do not print (bidi
// overrides, ...) are written as Go escapes (\x1b, \u202e).
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// Name is the status name from the wire table ("BadCredentials", ...), or "".
func (e *RejectedError) Name() string { return wire.StatusName(e.Status) }

// Temporary reports whether the same request may succeed later unchanged
// (rate limited, server error).
func (e *RejectedError) Temporary() bool {
	return e.Status == wire.StatusRateLimited || e.Status == wire.StatusServerError
}

// FingerprintMismatchError: the fetched CA certificate is not the pinned one.
type FingerprintMismatchError struct {
	Want string // pinned fingerprint, colon-hex upper case
	Got  string // fingerprint of the certificate the server sent
	// PinnedBy is the file Want comes from when CAFingerprint was not
	// given: Dir's ca.pem (the CA of an earlier enrollment) or pending.json
	// (the CA of the saved request).
	PinnedBy string
}

func (e *FingerprintMismatchError) Error() string {
	want := e.Want
	if e.PinnedBy != "" {
		want += ", the CA pinned by " + e.PinnedBy
	}
	return fmt.Sprintf("CA certificate fingerprint mismatch: the server sent SHA-256 %s, expected %s; "+
		"refusing to generate or send a key", e.Got, want)
}

func (e *FingerprintMismatchError) Is(target error) bool { return target == ErrFingerprintMismatch }

// UntrustedCAError: the CA certificate was fetched but not trusted, either
// because no decision could be made (no pin, no TrustOnFirstUse, no Confirm)
// or because Confirm refused it.
type UntrustedCAError struct {
	Fingerprint string // SHA-256, colon-hex upper case: check it out of band
	Subject     string // as the certificate has it: print it through Printable
	Refused     bool   // Confirm was asked and said no
}

func (e *UntrustedCAError) Error() string {
	if e.Refused {
		return "CA certificate not trusted: refused (SHA-256 " + e.Fingerprint + ")"
	}
	return "CA certificate not trusted: no CA fingerprint given and trust on first use not enabled (SHA-256 " + e.Fingerprint + ")"
}

func (e *UntrustedCAError) Is(target error) bool { return target == ErrUntrustedCA }

// ServerTrustError: TLS verification of the enrollment server failed.
type ServerTrustError struct {
	Err error // the crypto/tls or crypto/x509 error
}

// Error escapes the underlying error's text: it can carry the names of the
// presented certificate (x509.HostnameError), chosen by whoever answered.
func (e *ServerTrustError) Error() string {
	return "server certificate not trusted: " + printable(e.Err.Error())
}

func (e *ServerTrustError) Unwrap() error { return e.Err }

// HostMismatch reports whether the server's certificate was refused for
// not naming the host of the server URL (x509.HostnameError), and then
// that host and every name the certificate holds: its DNS names, then its
// IP addresses (subject alternative names). Go's error lists only one kind
// (the IP addresses for an IP host, else the DNS names) and none at all
// for a certificate that relies on its subject's CN, which is not a name
// verification uses; cn is that CN. The names and cn are chosen by
// whoever answered: print them through Printable.
func (e *ServerTrustError) HostMismatch() (host string, names []string, cn string, ok bool) {
	var he x509.HostnameError
	if !errors.As(e.Err, &he) || he.Certificate == nil {
		return "", nil, "", false
	}
	names = append(names, he.Certificate.DNSNames...)
	for _, ip := range he.Certificate.IPAddresses {
		names = append(names, ip.String())
	}
	return he.Host, names, he.Certificate.Subject.CommonName, true
}

func (e *ServerTrustError) Is(target error) bool { return target == ErrServerNotTrusted }

// CertificateError: the issued certificate failed the checks made before
// anything is saved.
type CertificateError struct {
	Reason string
	Err    error // underlying error, if any
	// NotValidNow: the only fault is the validity period at the device's
	// time (ErrNotValidNow).
	NotValidNow bool
}

func (e *CertificateError) Error() string {
	s := "issued certificate rejected: " + e.Reason
	if e.NotValidNow {
		s = "issued certificate not installed: " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CertificateError) Unwrap() error { return e.Err }

func (e *CertificateError) Is(target error) bool {
	return target == ErrBadCertificate || e.NotValidNow && target == ErrNotValidNow
}

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
}
