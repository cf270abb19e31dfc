package enrollclient

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"time"
)

// State summarizes what Dir holds.
type State string

const (
	StateNone    State = "none"    // nothing saved
	StatePending State = "pending" // a request waits for approval and no usable certificate is in place
	StateIssued  State = "issued"  // a usable certificate (a renewal may also be pending: see Pending)
	StateInvalid State = "invalid" // files present but unusable (expired, key mismatch, unreadable): see Problems
)

// StatusInfo is what Status reads from Dir. It never contacts the server.
type StatusInfo struct {
	State    State
	Cert     *CertInfo    // cert.pem, when present and parsable
	Pending  *PendingInfo // pending.json, when present
	Problems []string     // why State is StateInvalid, or other oddities
}

// CertInfo describes the installed certificate.
type CertInfo struct {
	Path          string
	Subject       string // Subject, Issuer, CASubject: as the certificates have them; print them through Printable
	CommonName    string
	Serial        string // colon-hex upper case
	Issuer        string
	NotBefore     time.Time
	NotAfter      time.Time
	DaysLeft      int // whole days until NotAfter (negative when expired)
	Expired       bool
	RenewAt       time.Time // start of the renewal window (RenewWindow)
	RenewDue      bool
	KeyType       string // "ECDSA P-256", "RSA 2048"
	KeyMatches    bool   // key.pem holds the certificate's private key
	KeyMode       os.FileMode
	CASubject     string
	CAFingerprint string // SHA-256 of ca.pem, colon-hex upper case
	CANotAfter    time.Time
	Chains        bool // the certificate chains to ca.pem (VerifyIssued)
}

// PendingInfo describes a saved request in flight.
type PendingInfo struct {
	Path          string
	Server        string
	DeviceName    string
	DeviceID      string
	Customer      string
	Username      string
	KeyType       string
	Created       time.Time
	Submitted     bool   // the server answered pending at least once
	ServerNonce   string // as the server sent it: print it through Printable
	Polls         int
	LastPoll      time.Time
	CAFingerprint string
	Committing    bool // the certificate was issued and verified; installing it was interrupted
	// Refused is the server's last answer when it refused the request
	// (status ≥ 2: bad credentials, device disabled, ...) and the request
	// was kept so that a corrected run resumes it with the same key; nil
	// when the last answer was pending, or none came. Its Reason is the
	// server's text: print it through Error or Printable.
	Refused *RejectedError
}

// Status reads the files in Dir: a pending request (pending.json), the
// installed certificate (cert.pem, key.pem, ca.pem), or nothing.
func (c *Client) Status() (*StatusInfo, error) {
	now := c.now()
	st := &StatusInfo{State: StateNone}
	p, err := c.loadPending()
	if err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else if p != nil {
		st.Pending = &PendingInfo{
			Path: c.path(PendingFile), Server: p.Server, DeviceName: p.DeviceName, DeviceID: p.DeviceID,
			Customer: p.Customer, Username: p.Username, KeyType: KeyDescription(p.key.Public()),
			Created: p.Created, Submitted: p.Submitted, ServerNonce: p.ServerNonce, Polls: p.Polls,
			LastPoll: p.LastPoll, CAFingerprint: p.CAFingerprint, Committing: p.Certificate != "",
		}
		if r := p.Refused; r != nil {
			st.Pending.Refused = &RejectedError{Op: r.Op, Status: r.Status, Reason: r.Error}
		}
		st.State = StatePending
	}

	cert, err := c.readCert(CertFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if st.State == StateNone {
			for _, f := range []string{KeyFile, CAFile} {
				if _, err := os.Stat(c.path(f)); err == nil {
					st.State = StateInvalid
					st.Problems = append(st.Problems, fmt.Sprintf("%s without %s", f, CertFile))
				}
			}
		}
		return st, nil
	case err != nil:
		st.Problems = append(st.Problems, err.Error())
		if st.State == StateNone {
			st.State = StateInvalid
		}
		return st, nil
	}
	ci := &CertInfo{
		Path: c.path(CertFile), Subject: cert.Subject.String(), CommonName: cert.Subject.CommonName,
		Serial: formatFingerprint(cert.SerialNumber.Bytes()), Issuer: cert.Issuer.String(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		DaysLeft: int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24)),
		Expired:  now.After(cert.NotAfter), RenewAt: RenewAt(cert, c.renewWindow()),
		KeyType: KeyDescription(cert.PublicKey),
	}
	ci.RenewDue = !now.Before(ci.RenewAt)
	st.Cert = ci
	usable := !ci.Expired && !now.Before(cert.NotBefore)
	if !usable {
		st.Problems = append(st.Problems, "certificate is not valid now (valid "+
			cert.NotBefore.UTC().Format(time.RFC3339)+" to "+cert.NotAfter.UTC().Format(time.RFC3339)+")")
	}

	if data, err := os.ReadFile(c.path(KeyFile)); err != nil {
		usable = false
		st.Problems = append(st.Problems, err.Error())
	} else if k, err := parseKeyPEM(data); err != nil {
		usable = false
		st.Problems = append(st.Problems, c.path(KeyFile)+": "+err.Error())
	} else {
		ci.KeyMatches = samePublicKey(k.Public(), cert.PublicKey)
		if !ci.KeyMatches {
			usable = false
			st.Problems = append(st.Problems, KeyFile+" does not hold the private key of "+CertFile)
		}
		if fi, err := os.Stat(c.path(KeyFile)); err == nil {
			ci.KeyMode = fi.Mode().Perm()
			if ci.KeyMode&0o077 != 0 {
				st.Problems = append(st.Problems, fmt.Sprintf("%s is readable by others (mode %04o; want 0600)", KeyFile, ci.KeyMode))
			}
		}
	}

	var ca *x509.Certificate
	if ca, err = c.readCert(CAFile); err != nil {
		usable = false
		st.Problems = append(st.Problems, err.Error())
	} else {
		ci.CASubject, ci.CAFingerprint, ci.CANotAfter = ca.Subject.String(), Fingerprint(ca), ca.NotAfter
		if err := VerifyIssued(cert, cert.PublicKey, ca, "", now); err != nil {
			if usable {
				st.Problems = append(st.Problems, err.Error())
			}
			usable = false
		} else {
			ci.Chains = true
		}
	}

	switch {
	case usable:
		st.State = StateIssued
	case st.State != StatePending:
		st.State = StateInvalid
	}
	return st, nil
}
