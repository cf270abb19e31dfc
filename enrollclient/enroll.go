package enrollclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Result describes a certificate the Client installed (or, for a Renew that
// was not due, the certificate in place).
type Result struct {
	Certificate   *x509.Certificate
	CACert        *x509.Certificate
	CAFingerprint string // SHA-256 of CACert, colon-hex upper case
	KeyPath       string
	CertPath      string
	CAPath        string
	Attempts      int           // request/retrieve messages sent by this call
	Resumed       bool          // a saved pending request (or interrupted commit) was continued
	Waited        time.Duration // time spent waiting for approval in this call
	RenewAt       time.Time     // when Renew will re-enroll this certificate
	// EndsWithCA: Renew did not re-enroll because the certificate ends
	// when its CA does; a new one could not last longer (the operator
	// must renew the CA, and the device enroll again pinning the new one).
	EndsWithCA bool
}

// Enroll runs the device side of the seed's Fig. 3B:
//
//  1. getcacert over TLS verified against the system roots or RootCAPEM;
//  2. the CA trust decision (CheckCA): the pin is CAFingerprint, else the
//     CA of a saved pending request, else the CA in ca.pem from an earlier
//     enrollment, else TrustOnFirstUse / Confirm; a mismatch or no decision
//     stops here, before any key exists;
//  3. a new key (KeyType) and CSR (CN and SAN = DeviceName), saved in
//     pending.json before they are sent;
//  4. operation=request with a fresh nonce, saved with the key; while the
//     answer is status=1, operation=retrieve (same CSR, same nonce: the
//     seed's retrieve "only differs in the 'operation' parameter") with
//     exponential backoff (InitialBackoff doubling to MaxBackoff, Progress
//     before each wait, with the error of the last retrieve if it failed)
//     until MaxWait, then ErrPendingTimeout with pending.json kept;
//  5. VerifyIssued, then key.pem, cert.pem and ca.pem replaced together
//     (see commitFiles in store.go), pending.json removed.
//
// With pending.json present, Enroll resumes it instead of making a new key:
// retrieve (or request, if no answer was ever received) with the saved key,
// CSR and nonce. Fields left empty (ServerURL, DeviceName, DeviceID, Customer,
// Username) are taken from the saved request; the password never is saved.
// A RejectedError with status 7 (bad CSR), 8 (rejected), 9 (nonce reused)
// or 11 (not found) discards the saved request, whose key can then never
// be certified (see endsRequest); other refusals keep it so that a
// corrected retry reuses the key. So does an issued certificate that is
// not valid by this device's clock (ErrNotValidNow): the server has issued
// it, so the next run retrieves and installs it, once the clock is right.
func (c *Client) Enroll(ctx context.Context) (*Result, error) {
	if err := c.checkGivenServer(); err != nil {
		return nil, err
	}
	unlock, err := c.lockDir()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return c.enroll(ctx, true)
}

// checkGivenServer refuses a ServerURL that is given and wrong (http://
// without AllowHTTP, ...) before Dir is made or locked; one left empty is
// the saved request's, checked once it is read.
func (c *Client) checkGivenServer() error {
	if c.ServerURL == "" {
		return nil
	}
	return c.checkServer()
}

// Poll resumes a saved pending request with a single retrieve, without
// waiting: the certificate is installed if it was issued, ErrPending is
// returned if it is still pending, ErrNoPending if nothing is saved.
func (c *Client) Poll(ctx context.Context) (*Result, error) {
	unlock, err := c.lockDir()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := c.loadPending()
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, ErrNoPending
	}
	return c.enroll(ctx, false)
}

// Renew re-enrolls with a fresh key when the certificate in Dir is due:
// within RenewWindow of its expiry (default: in the last third of its
// lifetime), at once with force, or when key.pem does not hold the
// certificate's key (missing, damaged, or restored alone: the device
// cannot use the pair). Unless forced or its key is lost, a certificate
// that ends when the pinned CA does is not renewed, even when due
// (Result.EndsWithCA): a new one could not last longer.
//
// renewed reports whether a new certificate was installed. When it was
// not due, err is nil and res describes the certificate in place (RenewAt
// says when it will be due). A saved pending request is resumed first,
// due or not.
//
// The CA pinned by ca.pem stays pinned unless CAFingerprint is set.
// DeviceName defaults to the certificate's, and KeyType to its key's
// algorithm and size (a device that can load only RSA keys keeps an RSA
// key); a key GenerateKey cannot make is an ErrConfig unless KeyType is
// set. The old certificate stays in place until the new one is verified
// and installed, also when the renewal ends pending (ErrPendingTimeout):
// run Renew again.
func (c *Client) Renew(ctx context.Context, force bool) (renewed bool, res *Result, err error) {
	if err := c.checkGivenServer(); err != nil {
		return false, nil, err
	}
	unlock, err := c.lockDir()
	if err != nil {
		return false, nil, err
	}
	defer unlock()
	p, err := c.loadPending()
	if err != nil {
		return false, nil, err
	}
	if p != nil {
		res, err := c.enroll(ctx, true)
		return err == nil, res, err
	}
	cur, err := c.readCert(CertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil, fmt.Errorf("%w: no %s in %s", ErrNotEnrolled, CertFile, c.dir())
	}
	if err != nil {
		return false, nil, err
	}
	renewAt := RenewAt(cur, c.renewWindow())
	ca, caErr := c.readCert(CAFile)
	// the server cuts certificates at the CA's end: near it, renewing (with
	// the same CA pinned) would make ever shorter certificates, each
	// superseding the last, and none lasting longer
	endsWithCA := caErr == nil && !cur.NotAfter.Before(ca.NotAfter) && !c.pinsAnotherCA(ca)
	// a certificate without its key (key.pem missing, damaged, or another
	// key: a file restored alone) is of no use to the device: due now
	keyLost := !c.holdsKeyOf(cur)
	if !force && !keyLost && (c.now().Before(renewAt) || endsWithCA) {
		res := &Result{Certificate: cur, RenewAt: renewAt, EndsWithCA: endsWithCA,
			KeyPath: c.path(KeyFile), CertPath: c.path(CertFile), CAPath: c.path(CAFile)}
		if caErr == nil {
			res.CACert, res.CAFingerprint = ca, Fingerprint(ca)
		}
		return false, res, nil
	}
	cc := *c
	if cc.DeviceName == "" {
		cc.DeviceName = certDeviceName(cur)
	}
	if cc.KeyType == "" {
		kt, ok := keyTypeOf(cur.PublicKey)
		if !ok {
			return false, nil, configErr("the certificate in %s has an %s key, which this client cannot make; give the key type explicitly",
				c.path(CertFile), KeyDescription(cur.PublicKey))
		}
		cc.KeyType = kt
	}
	res, err = cc.enroll(ctx, true)
	return err == nil, res, err
}

// holdsKeyOf reports whether key.pem holds the private key of cert.
func (c *Client) holdsKeyOf(cert *x509.Certificate) bool {
	data, err := os.ReadFile(c.path(KeyFile))
	if err != nil {
		return false
	}
	k, err := parseKeyPEM(data)
	return err == nil && samePublicKey(k.Public(), cert.PublicKey)
}

// pinsAnotherCA reports whether CAFingerprint names another CA than ca (the
// operator's new one, after a renewal of the CA).
func (c *Client) pinsAnotherCA(ca *x509.Certificate) bool {
	if c.CAFingerprint == "" {
		return false
	}
	pin, err := ParseFingerprint(c.CAFingerprint)
	return err == nil && pin != Fingerprint(ca)
}

// RenewAt is when a certificate enters its renewal window: window (a
// fraction of its lifetime) before NotAfter.
func RenewAt(cert *x509.Certificate, window float64) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-time.Duration(float64(life) * window))
}

func certDeviceName(cert *x509.Certificate) string {
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName
	}
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames[0]
	}
	if len(cert.IPAddresses) > 0 {
		return cert.IPAddresses[0].String()
	}
	return ""
}

func (c *Client) readCert(name string) (*x509.Certificate, error) {
	data, err := os.ReadFile(c.path(name))
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", c.path(name), err)
	}
	return cert, nil
}

// enroll is Enroll with the lock held; wait=false sends one message only.
func (c *Client) enroll(ctx context.Context, wait bool) (*Result, error) {
	p, err := c.loadPending()
	if err != nil {
		return nil, err
	}
	cc := *c // fill-ins from the saved request stay local to this call
	if p != nil {
		if err := cc.resumeFrom(p); err != nil {
			return nil, err
		}
		if p.Certificate != "" {
			// interrupted commit: finish it locally
			return cc.finish(p, 0, 0, true)
		}
	}
	if err := cc.checkEnroll(); err != nil {
		return nil, err
	}

	// Fig. 3B steps 335/340: the CA certificate and the trust decision,
	// before any key is generated or sent.
	ca, err := cc.trustedCA(ctx, p)
	if err != nil {
		return nil, err
	}

	// Step 350: the key pair, made here, saved before it is sent.
	resumed := p != nil
	if p == nil {
		if p, err = cc.newRequest(); err != nil {
			return nil, err
		}
	}
	if p.Nonce == "" { // a new request, or one saved before its nonce was kept
		nonce, err := cc.newNonce()
		if err != nil {
			return nil, err
		}
		p.Nonce = string(nonce)
	}
	p.ca, p.CACert, p.CAFingerprint = ca, string(certPEM(ca.Raw)), Fingerprint(ca)
	if err := os.MkdirAll(cc.dir(), 0o700); err != nil {
		return nil, err
	}
	if err := cc.savePending(p); err != nil {
		return nil, fmt.Errorf("saving the pending request: %w", err)
	}

	start := cc.now()
	if cc.MaxWait < 0 {
		wait = false
	}
	deadline := start.Add(orDefault(cc.MaxWait, DefaultMaxWait))
	delay := orDefault(cc.InitialBackoff, DefaultInitialBackoff)
	maxDelay := orDefault(cc.MaxBackoff, DefaultMaxBackoff)
	attempts, retrieves := 0, 0
	var lastErr error
	for {
		op := wire.OpRequest
		if p.Submitted {
			op = wire.OpRetrieve
		}
		attempts++
		if op == wire.OpRetrieve {
			retrieves++
		}
		ans, err := cc.exchange(ctx, wire.Request{
			Operation: op, Nonce: []byte(p.Nonce), Username: cc.Username, Password: cc.Password,
			Device: cc.DeviceID, Customer: cc.Customer, CSR: p.csrDER, CSRField: cc.csrField(),
		})
		if err == nil && ans.Status >= 2 {
			err = &RejectedError{Op: op, Status: ans.Status, Reason: ans.Error}
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted; the request is saved in %s: %w", cc.path(PendingFile), ctx.Err())
			}
			var re *RejectedError
			if errors.As(err, &re) && endsRequest(re.Status) {
				if rerr := cc.removePending(); rerr != nil {
					return nil, errors.Join(err, rerr)
				}
				return nil, err
			}
			if re != nil {
				if !re.Temporary() {
					// kept for a corrected retry: Status tells why it waits
					p.Refused = &savedRefusal{Op: re.Op, Status: re.Status, Error: re.Reason}
				} // a temporary one (rate limited, server error) is no refusal: it waits as it did
				p.Polls++
				p.LastPoll = cc.now().UTC()
				if serr := cc.savePending(p); serr != nil {
					return nil, errors.Join(err, serr)
				}
			}
			if !(wait && p.Submitted && retryable(err)) {
				return nil, err
			}
			lastErr = err // transient trouble while polling: keep polling
		case ans.Status == wire.StatusOK:
			if err := cc.journalIssued(p, ans.Certificate, ca); err != nil {
				return nil, err
			}
			return cc.finish(p, attempts, cc.now().Sub(start), resumed)
		default: // pending
			lastErr = nil
			p.Submitted = true
			p.Refused = nil
			if ans.Nonce != "" {
				p.ServerNonce = ans.Nonce
			}
			p.Polls++
			p.LastPoll = cc.now().UTC()
			if err := cc.savePending(p); err != nil {
				return nil, err
			}
			if !wait {
				return nil, fmt.Errorf("%w (device %s, request saved in %s)", ErrPending, p.DeviceName, cc.path(PendingFile))
			}
		}
		remaining := deadline.Sub(cc.now())
		if remaining <= 0 {
			err := fmt.Errorf("%w after %s (%d retrieves); the request and its key are saved in %s: run enroll again to resume",
				ErrPendingTimeout, roundDuration(cc.now().Sub(start)), retrieves, cc.path(PendingFile))
			if lastErr != nil {
				err = fmt.Errorf("%w; last error: %v", err, lastErr)
			}
			return nil, err
		}
		d := min(delay, remaining)
		if cc.Progress != nil {
			cc.Progress(retrieves+1, d, lastErr)
		}
		if err := cc.wait(ctx, d); err != nil {
			return nil, fmt.Errorf("interrupted while pending; the request is saved in %s: %w", cc.path(PendingFile), err)
		}
		delay = min(2*delay, maxDelay)
	}
}

// endsRequest reports whether a refusal with this status means the saved
// request can never be certified, so that it is discarded with its key:
// the CSR is refused (7), the request was rejected (8) or is unknown to
// the server (11), or the server no longer binds its nonce to it (9):
// the next run starts over with a new key and nonce. Other refusals keep
// it for a corrected retry.
func endsRequest(status int) bool {
	switch status {
	case wire.StatusBadCSR, wire.StatusRejected, wire.StatusNotFound, wire.StatusNonceReused:
		return true
	}
	return false
}

// journalIssued checks the certificate the server issued for p (DER) and
// journals it into pending.json, for finish to install. A certificate that
// is wrong discards p; one that is only not valid by this device's clock
// (ErrNotValidNow) keeps p, to be retrieved again once the clock is right.
func (c *Client) journalIssued(p *pendingState, der []byte, ca *x509.Certificate) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		c.removePending()
		return &CertificateError{Reason: "it does not parse", Err: err}
	}
	if verr := VerifyIssued(cert, p.key.Public(), ca, c.DeviceName, c.now()); verr != nil {
		if errors.Is(verr, ErrNotValidNow) {
			// Issued, and perhaps superseding the installed
			// certificate: keep the key, retrieve it again later.
			p.Submitted = true
			p.Polls++
			p.LastPoll = c.now().UTC()
			if err := c.savePending(p); err != nil {
				return errors.Join(verr, err)
			}
			return c.clockError(verr)
		}
		// the server's answer for this key is unusable; start over next time
		c.removePending()
		return verr
	}
	p.Certificate = string(certPEM(cert.Raw))
	p.LastPoll = c.now().UTC()
	return c.savePending(p) // journal before replacing files
}

// resumeFrom fills the fields c leaves empty from the saved request p,
// and refuses fields that contradict it.
func (c *Client) resumeFrom(p *pendingState) error {
	if c.DeviceName == "" {
		c.DeviceName = p.DeviceName
	} else if !strings.EqualFold(strings.TrimSuffix(c.DeviceName, "."), strings.TrimSuffix(p.DeviceName, ".")) {
		return configErr("a pending request for device %q is saved in %s; finish it with that device name, or remove the file to start over",
			p.DeviceName, c.path(PendingFile))
	}
	// a retrieve repeats the request's variables (seed 001): the server
	// binds the nonce to the ids, and refuses it with others
	for _, id := range []struct{ name, given, saved string }{{"device id", c.DeviceID, p.DeviceID}, {"customer", c.Customer, p.Customer}} {
		if id.given != "" && id.saved != "" && id.given != id.saved {
			return configErr("a pending request with %s %q is saved in %s; finish it with that %s, or remove the file to start over",
				id.name, id.saved, c.path(PendingFile), id.name)
		}
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.ServerURL, p.Server)
	fill(&c.DeviceID, p.DeviceID)
	fill(&c.Customer, p.Customer)
	fill(&c.Username, p.Username)
	fill(&c.CSRField, p.CSRField)
	return nil
}

// trustedCA fetches the CA certificate and makes the trust decision
// (CheckCA) against the first pin there is: CAFingerprint, the CA of the
// saved request p, or the CA in ca.pem.
func (c *Client) trustedCA(ctx context.Context, p *pendingState) (*x509.Certificate, error) {
	ca, err := c.GetCACert(ctx)
	if err != nil {
		return nil, err
	}
	pin, pinnedBy := "", "" // pinnedBy: the file a pin not given comes from
	switch {
	case c.CAFingerprint != "":
		pin, _ = ParseFingerprint(c.CAFingerprint) // checked by checkEnroll
	case p != nil:
		pin, pinnedBy = p.CAFingerprint, c.path(PendingFile)
	default:
		if saved, err := c.readCert(CAFile); err == nil {
			pin, pinnedBy = Fingerprint(saved), c.path(CAFile)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := c.checkCA(ca, pin); err != nil {
		var fe *FingerprintMismatchError
		if errors.As(err, &fe) {
			fe.PinnedBy = pinnedBy
		}
		return nil, err
	}
	return ca, nil
}

// newRequest makes a new key pair (KeyType) and its CSR for DeviceName,
// as the pending request to send; nothing is saved yet.
func (c *Client) newRequest() (*pendingState, error) {
	kt, _ := ParseKeyType(string(c.KeyType)) // checked by checkEnroll
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	mk := CreateCSR
	if c.csrFunc != nil {
		mk = c.csrFunc
	}
	csr, err := mk(key, c.DeviceName)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate request: %w", err)
	}
	keyPEM, err := marshalKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &pendingState{
		Version: pendingVersion, Server: c.ServerURL, DeviceName: c.DeviceName, DeviceID: c.DeviceID,
		Customer: c.Customer, Username: c.Username, KeyType: kt, CSRField: c.csrField(),
		Created: c.now().UTC(), Key: string(keyPEM), CSR: string(csrPEM(csr)),
		key: key, csrDER: csr,
	}, nil
}

// clockError explains an ErrNotValidNow: the key stays in pending.json.
func (c *Client) clockError(err error) error {
	return fmt.Errorf("%w; check this device's clock (date, NTP): the server issued the certificate for the key "+
		"kept in %s, and the next run installs it once the clock is right (if the clock is right, the certificate "+
		"is unusable: remove %s to start over with a new key)", err, c.path(PendingFile), PendingFile)
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// finish installs the journaled certificate of p.
func (c *Client) finish(p *pendingState, attempts int, waited time.Duration, resumed bool) (*Result, error) {
	cert, err := parseCertPEM([]byte(p.Certificate))
	if err != nil {
		return nil, fmt.Errorf("%s: certificate: %v", PendingFile, err)
	}
	now := c.now()
	verify := func(keyPEM, certPEMData, caPEM []byte) error {
		k, err := parseKeyPEM(keyPEM)
		if err != nil {
			return &CertificateError{Reason: "staged key does not parse", Err: err}
		}
		crt, err := parseCertPEM(certPEMData)
		if err != nil {
			return &CertificateError{Reason: "staged certificate does not parse", Err: err}
		}
		ca, err := parseCertPEM(caPEM)
		if err != nil {
			return &CertificateError{Reason: "staged CA certificate does not parse", Err: err}
		}
		return VerifyIssued(crt, k.Public(), ca, p.DeviceName, now)
	}
	if err := c.commitFiles([]byte(p.Key), []byte(p.Certificate), []byte(p.CACert), verify); err != nil {
		if errors.Is(err, ErrNotValidNow) {
			return nil, c.clockError(err) // the journal stays: finish once the clock is right
		}
		if errors.Is(err, ErrBadCertificate) {
			c.removePending()
		}
		return nil, err
	}
	return &Result{
		Certificate: cert, CACert: p.ca, CAFingerprint: Fingerprint(p.ca),
		KeyPath: c.path(KeyFile), CertPath: c.path(CertFile), CAPath: c.path(CAFile),
		Attempts: attempts, Resumed: resumed, Waited: waited,
		RenewAt: RenewAt(cert, c.renewWindow()),
	}, nil
}
