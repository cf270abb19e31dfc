package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitPending   = 3
	exitRejected  = 4
	exitUntrusted = 5
)

const passwordEnv = "CHCLIENT_PASSWORD"

const usage = `Usage: chclient <command> [flags]

Enroll this device (gateway, proxy, gatekeeper, SIP phone) with a clearinghouse
enrollment server: fetch the CA certificate over verified HTTPS, check it
against the fingerprint you were given, make a key pair on this device,
request a certificate, install it, and renew it before it expires.

Commands:
  enroll   enroll, or resume a pending enrollment; waits up to --max-wait for approval
  status   show what --dir holds; with a pending request and a password, ask the server once
  renew    re-enroll with a new key when the certificate is in its renewal window,
             key.pem does not hold its key, or --force
  help     show this text

Flags:
  --server URL             enrollment URL, e.g. https://enroll.example.com/
  --ca-fingerprint HEX     SHA-256 fingerprint of the clearinghouse CA certificate,
                           obtained out of band (colons optional, any case)
  --trust-on-first-use     accept the CA certificate without a fingerprint; it is
                           pinned in --dir afterwards
  --root-ca FILE           PEM root CA for the server's TLS certificate (default: system roots)
  --allow-http             allow an http:// server URL (the server is then NOT authenticated)
  --device-name NAME       this device's DNS name (or IP address): the certificate's subject
  --device-id ID           clearinghouse-assigned device id (digits)
  --customer ID            clearinghouse-assigned customer id (digits)
  --username NAME          clearinghouse account name
  --password-file FILE     file holding the account password (first line); or set
                           CHCLIENT_PASSWORD. There is no --password flag: a password
                           on the command line is visible to every user of the machine.
  --key-type TYPE          p256 (default), p384, rsa2048, rsa3072, rsa4096;
                           renew: default the type and size of the key it replaces
  --csr-field NAME         variable carrying the CSR: request (default) or certreq
  --dir DIR                where key.pem, cert.pem, ca.pem, pending.json live (default .)
  --max-wait DURATION      how long enroll/renew wait for approval (default 10m; 0 = do not wait)
  --poll-interval DURATION first wait between retrieves (default 2s), doubling each time
  --max-poll-interval DURATION
                           longest wait between retrieves (default 1m)
  --renew-window FRACTION  renew when this fraction of the lifetime is left (default 0.3333)
  --force                  renew: renew now; enroll: enroll even if a valid certificate exists
  --quiet                  no progress output on stderr

A pending request is saved in --dir (pending.json, with its key): run the same
enroll (or renew) again to keep waiting; it resumes with the saved key.
Fields not given on a resume (server, device, customer, username) are taken
from the saved request; the password is never saved. renew and enroll --force
keep the key and certificate they replace as key.pem.bak and cert.pem.bak.

Exit status:
  0  enroll: certificate installed (or already enrolled); status: a valid
     certificate is installed; renew: renewed, or not yet due (printed)
  1  error (network, files, invalid certificate from the server, ...);
     status: nothing enrolled, or the installed files are unusable
     renew: not renewed, the certificate having expired with its CA
  2  usage: bad or missing flag, --password given, http:// without --allow-http
  3  pending: the request waits for approval (saved; run the command again)
  4  rejected or refused by the server (status >= 2; the status is printed);
     status: the server's last answer refused the saved request
  5  CA fingerprint mismatch, CA trust refused or not decided, or the server's
     TLS certificate not trusted
`

// env is what run needs from the process, replaceable in tests.
type env struct {
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
	isTerminal func() bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		isTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
	})
	stop()
	os.Exit(code)
}

type options struct {
	server, caFingerprint, rootCA, deviceName, deviceID, customer, username string
	passwordFile, keyType, csrField, dir                                    string
	tofu, allowHTTP, force, quiet                                           bool
	maxWait, pollInterval, maxPollInterval                                  time.Duration
	renewWindow                                                             float64
}

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	case "enroll", "status", "renew":
	default:
		fmt.Fprintf(e.stderr, "chclient: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "password" || name == "pass") {
			fmt.Fprintf(e.stderr, "chclient: --%s is not accepted: a password on the command line is visible to every user "+
				"of this machine (ps, /proc, shell history).\nPut it in a file readable only by you and use --password-file FILE, "+
				"or set the %s environment variable.\n", name, passwordEnv)
			return exitUsage
		}
	}

	var o options
	fs := flag.NewFlagSet("chclient "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", "", "")
	fs.StringVar(&o.caFingerprint, "ca-fingerprint", "", "")
	fs.BoolVar(&o.tofu, "trust-on-first-use", false, "")
	fs.StringVar(&o.rootCA, "root-ca", "", "")
	fs.BoolVar(&o.allowHTTP, "allow-http", false, "")
	fs.StringVar(&o.deviceName, "device-name", "", "")
	fs.StringVar(&o.deviceID, "device-id", "", "")
	fs.StringVar(&o.customer, "customer", "", "")
	fs.StringVar(&o.username, "username", "", "")
	fs.StringVar(&o.passwordFile, "password-file", "", "")
	fs.StringVar(&o.keyType, "key-type", "", "") // "": p256, or renew's current type
	fs.StringVar(&o.csrField, "csr-field", wire.CSRFieldRequest, "")
	fs.StringVar(&o.dir, "dir", ".", "")
	fs.DurationVar(&o.maxWait, "max-wait", enrollclient.DefaultMaxWait, "")
	fs.DurationVar(&o.pollInterval, "poll-interval", enrollclient.DefaultInitialBackoff, "")
	fs.DurationVar(&o.maxPollInterval, "max-poll-interval", enrollclient.DefaultMaxBackoff, "")
	fs.Float64Var(&o.renewWindow, "renew-window", 0.3333, "")
	fs.BoolVar(&o.force, "force", false, "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, usage)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "chclient %s: %v\n(run \"chclient help\" for the flags)\n", cmd, err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "chclient %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return exitUsage
	}
	if o.renewWindow <= 0 || o.renewWindow > 1 {
		fmt.Fprintf(e.stderr, "chclient %s: --renew-window %v is not a fraction in (0, 1]\n", cmd, o.renewWindow)
		return exitUsage
	}
	if o.maxWait < 0 || o.pollInterval <= 0 || o.maxPollInterval <= 0 {
		fmt.Fprintf(e.stderr, "chclient %s: --max-wait must be >= 0 and the poll intervals > 0\n", cmd)
		return exitUsage
	}

	c, code := newClient(cmd, o, e)
	if c == nil {
		return code
	}
	switch cmd {
	case "enroll":
		return cmdEnroll(ctx, c, o, e)
	case "renew":
		return cmdRenew(ctx, c, o, e)
	default:
		return cmdStatus(ctx, c, o, e)
	}
}

// missingFlag is the flag that gives what a configuration error says is
// required ("" when it says something else): the library names the
// setting, not chclient's flag.
func missingFlag(err error) string {
	reason := configReason(err)
	for _, f := range []struct{ setting, flag string }{
		{"server URL is required", "--server"},
		{"device name (DNS name or IP address) is required", "--device-name"},
		{"username is required", "--username"},
		{"device id is required", "--device-id"},
		{"customer id is required", "--customer"},
	} {
		if reason == f.setting {
			return f.flag
		}
	}
	return ""
}

// configReason is the detail of a configuration error, without the
// generic "invalid client configuration" prefix.
func configReason(err error) string {
	return strings.TrimPrefix(err.Error(), enrollclient.ErrConfig.Error()+": ")
}

func newClient(cmd string, o options, e env) (*enrollclient.Client, int) {
	var kt enrollclient.KeyType // not given: the library's default (renew: the current key's)
	if o.keyType != "" {
		var err error
		if kt, err = enrollclient.ParseKeyType(o.keyType); err != nil {
			fmt.Fprintf(e.stderr, "chclient %s: --key-type: %s\n", cmd, configReason(err))
			return nil, exitUsage
		}
	}
	c := &enrollclient.Client{
		ServerURL: o.server, AllowHTTP: o.allowHTTP, CAFingerprint: o.caFingerprint, TrustOnFirstUse: o.tofu,
		DeviceName: o.deviceName, DeviceID: o.deviceID, Customer: o.customer, Username: o.username,
		CSRField: o.csrField, KeyType: kt, Dir: o.dir,
		InitialBackoff: o.pollInterval, MaxBackoff: o.maxPollInterval, MaxWait: o.maxWait,
		RenewWindow: o.renewWindow,
	}
	if o.maxWait == 0 {
		c.MaxWait = -1 // send once, do not wait
	}
	if o.caFingerprint != "" {
		if _, err := enrollclient.ParseFingerprint(o.caFingerprint); err != nil {
			fmt.Fprintf(e.stderr, "chclient %s: --ca-fingerprint: %s\n", cmd, configReason(err))
			return nil, exitUsage
		}
	}
	if o.rootCA != "" {
		pemData, err := os.ReadFile(o.rootCA)
		if err != nil {
			fmt.Fprintf(e.stderr, "chclient %s: --root-ca: %v\n", cmd, err)
			return nil, exitUsage
		}
		c.RootCAPEM = pemData
	}
	switch {
	case o.passwordFile != "":
		data, err := os.ReadFile(o.passwordFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "chclient %s: --password-file: %v\n", cmd, err)
			return nil, exitUsage
		}
		pw, _, _ := strings.Cut(string(data), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			fmt.Fprintf(e.stderr, "chclient %s: --password-file %s: the first line is empty\n", cmd, o.passwordFile)
			return nil, exitUsage
		}
		c.Password = pw
	default:
		c.Password = e.getenv(passwordEnv)
	}
	if !o.quiet {
		c.Progress = func(attempt int, next time.Duration, lastErr error) {
			fmt.Fprintf(e.stderr, "chclient: %s; retrieve %d in %s\n", progressState(lastErr), attempt, next.Round(time.Millisecond))
		}
	}
	if !o.tofu && o.caFingerprint == "" && e.isTerminal != nil && e.isTerminal() {
		c.Confirm = confirmer(e)
	}
	return c, exitOK
}

// progressState says what the last answer to a poll was: pending, or why
// there was none.
func progressState(lastErr error) string {
	var ue *url.Error
	switch {
	case lastErr == nil:
		return "pending approval"
	case errors.As(lastErr, &ue):
		return "the server could not be reached (" + enrollclient.Printable(lastErr.Error()) + ")"
	}
	return "the last retrieve failed (" + enrollclient.Printable(lastErr.Error()) + ")"
}

// confirmer asks the operator on the terminal: Fig. 3B step 340 done by a
// person, comparing the fingerprint with the clearinghouse's, out of band.
func confirmer(e env) func(string, *x509.Certificate) bool {
	return func(fp string, cert *x509.Certificate) bool {
		fmt.Fprintf(e.stderr, "The clearinghouse sent this CA certificate:\n"+
			"  subject:  %s\n  valid:    %s to %s\n  SHA-256:  %s\n"+
			"Compare the fingerprint with the one your clearinghouse operator gave you\n"+
			"(by telephone or another channel you trust). Trust this CA? [y/N] ",
			enrollclient.Printable(cert.Subject.String()), cert.NotBefore.UTC().Format(time.DateOnly), cert.NotAfter.UTC().Format(time.DateOnly), fp)
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true
		}
		return false
	}
}

func cmdEnroll(ctx context.Context, c *enrollclient.Client, o options, e env) int {
	if !o.force {
		st, err := c.Status()
		sameDevice := o.deviceName == "" || st != nil && st.Cert != nil &&
			strings.EqualFold(strings.TrimSuffix(st.Cert.CommonName, "."), strings.TrimSuffix(o.deviceName, "."))
		// a pin of another CA (the clearinghouse renewed its CA): the
		// installed certificate is of a CA no longer pinned
		pin, _ := enrollclient.ParseFingerprint(o.caFingerprint) // checked in newClient
		sameCA := pin == "" || st != nil && st.Cert != nil && st.Cert.CAFingerprint == pin
		if err == nil && st.State == enrollclient.StateIssued && st.Pending == nil && sameDevice && sameCA {
			fmt.Fprintf(e.stdout, "already enrolled: %s, valid until %s (%s)\n"+
				"use \"chclient renew\" to renew, or \"chclient enroll --force\" to enroll again\n",
				enrollclient.Printable(st.Cert.Subject), st.Cert.NotAfter.UTC().Format(time.RFC3339), timeLeft(st.Cert.NotAfter))
			return exitOK
		}
	}
	res, err := c.Enroll(ctx)
	if err != nil {
		return fail(c, e, "enroll", err)
	}
	printResult(e.stdout, "enrolled", res)
	return exitOK
}

func cmdRenew(ctx context.Context, c *enrollclient.Client, o options, e env) int {
	renewed, res, err := c.Renew(ctx, o.force)
	if err != nil {
		return fail(c, e, "renew", err)
	}
	if !renewed && res.EndsWithCA {
		// expired: the device has no valid certificate, which a cron job's
		// exit status must show
		expired := time.Now().After(res.Certificate.NotAfter)
		valid := "is valid"
		if expired {
			valid = "was valid"
		}
		fmt.Fprintf(e.stdout, "not renewed: %s %s until %s (%s), when its CA ends too: a new certificate could not last longer; "+
			"the operator must renew the operational CA, then enroll again with --force --ca-fingerprint of the new CA\n",
			enrollclient.Printable(res.Certificate.Subject.String()), valid, res.Certificate.NotAfter.UTC().Format(time.RFC3339),
			timeLeft(res.Certificate.NotAfter))
		if expired {
			return exitError
		}
		return exitOK
	}
	if !renewed {
		fmt.Fprintf(e.stdout, "not yet due: %s is valid until %s (%s); renewal due from %s\n",
			enrollclient.Printable(res.Certificate.Subject.String()), res.Certificate.NotAfter.UTC().Format(time.RFC3339),
			timeLeft(res.Certificate.NotAfter), res.RenewAt.UTC().Format(time.RFC3339))
		return exitOK
	}
	printResult(e.stdout, "renewed", res)
	return exitOK
}

func cmdStatus(ctx context.Context, c *enrollclient.Client, o options, e env) int {
	st, err := c.Status()
	if err != nil {
		return fail(c, e, "status", err)
	}
	printStatus(e.stdout, st, o.dir)
	if st.Pending != nil && c.Password != "" {
		fmt.Fprintf(e.stdout, "asking the server about the pending request ...\n")
		res, err := c.Poll(ctx)
		if err == nil {
			printResult(e.stdout, "issued", res)
			return exitOK
		}
		if st.State == enrollclient.StateIssued {
			// the installed certificate is still valid: the renewal's
			// outcome is information, not the device's status
			fmt.Fprintf(e.stdout, "renewal: %s\n", enrollclient.Printable(err.Error()))
			return exitOK
		}
		return fail(c, e, "status", err)
	}
	switch st.State {
	case enrollclient.StateIssued:
		return exitOK
	case enrollclient.StatePending:
		if st.Pending != nil && st.Pending.Refused != nil {
			return exitRejected // as the enroll that got the refusal
		}
		if c.Password == "" {
			fmt.Fprintf(e.stdout, "(give the password with --password-file or %s to ask the server, or run enroll again)\n", passwordEnv)
		}
		return exitPending
	}
	return exitError
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// timeLeft is how long until t: "364 days left", "5 hours left",
// "59 minutes left", or "expired 3 days ago".
func timeLeft(t time.Time) string {
	d := time.Until(t)
	if d < 0 {
		return "expired " + span(-d) + " ago"
	}
	return span(d) + " left"
}

// span is d in whole days, or hours, minutes or seconds under a day, an
// hour or a minute (rounded down).
func span(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d >= 24*time.Hour:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d >= time.Hour:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute:
		n, unit = int64(d/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func printResult(w io.Writer, what string, r *enrollclient.Result) {
	cert := r.Certificate
	fmt.Fprintf(w, "%s: %s\n", what, enrollclient.Printable(cert.Subject.String()))
	fmt.Fprintf(w, "  certificate  %s (serial %s)\n", r.CertPath, colonHex(cert.SerialNumber.Bytes()))
	fmt.Fprintf(w, "  valid        %s to %s (%s)\n", cert.NotBefore.UTC().Format(time.RFC3339),
		cert.NotAfter.UTC().Format(time.RFC3339), span(time.Until(cert.NotAfter)))
	fmt.Fprintf(w, "  renew from   %s\n", r.RenewAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  key          %s (%s, mode 0600)\n", r.KeyPath, enrollclient.KeyDescription(cert.PublicKey))
	fmt.Fprintf(w, "  CA           %s (%s)\n", r.CAPath, enrollclient.Printable(r.CACert.Subject.String()))
	fmt.Fprintf(w, "  CA SHA-256   %s\n", r.CAFingerprint)
	if r.Resumed {
		fmt.Fprintf(w, "  (resumed a saved request)\n")
	}
}

func printStatus(w io.Writer, st *enrollclient.StatusInfo, dir string) {
	fmt.Fprintf(w, "state:        %s (%s)\n", st.State, dir)
	if ci := st.Cert; ci != nil {
		fmt.Fprintf(w, "subject:      %s\n", enrollclient.Printable(ci.Subject))
		fmt.Fprintf(w, "serial:       %s\n", ci.Serial)
		fmt.Fprintf(w, "not after:    %s (%s)\n", ci.NotAfter.UTC().Format(time.RFC3339), timeLeft(ci.NotAfter))
		due := ""
		if ci.RenewDue {
			due = " (due now: run chclient renew)"
		}
		fmt.Fprintf(w, "renew from:   %s%s\n", ci.RenewAt.UTC().Format(time.RFC3339), due)
		fmt.Fprintf(w, "key:          %s, mode %04o, matches certificate: %v\n", ci.KeyType, ci.KeyMode, ci.KeyMatches)
		if ci.CAFingerprint != "" {
			fmt.Fprintf(w, "CA:           %s\n", enrollclient.Printable(ci.CASubject))
			fmt.Fprintf(w, "CA SHA-256:   %s\n", ci.CAFingerprint)
		}
	}
	if p := st.Pending; p != nil {
		what := "request waiting for approval"
		switch {
		case p.Committing:
			what = "certificate issued, installation interrupted (run enroll to finish)"
		case p.Refused != nil:
			what = "request refused by the server's last answer; it is kept with its key: correct the cause " +
				"(the password, ...) and run enroll again to resume it"
		case !p.Submitted:
			what = "request saved, no answer from the server yet"
		}
		fmt.Fprintf(w, "pending:      %s\n", what)
		if p.Refused != nil {
			fmt.Fprintf(w, "  refused:    %s\n", p.Refused) // Error escapes the server's text
		}
		fmt.Fprintf(w, "  device:     %s (device id %s, customer %s, user %s)\n", p.DeviceName, p.DeviceID, p.Customer, p.Username)
		fmt.Fprintf(w, "  server:     %s\n", p.Server)
		answers := "answers"
		if p.Polls == 1 {
			answers = "answer"
		}
		fmt.Fprintf(w, "  since:      %s, %d %s, last %s\n", p.Created.UTC().Format(time.RFC3339), p.Polls, answers, fmtTime(p.LastPoll))
		if p.ServerNonce != "" {
			fmt.Fprintf(w, "  nonce:      %s (server)\n", enrollclient.Printable(p.ServerNonce))
		}
		fmt.Fprintf(w, "  key:        %s\n", p.KeyType)
		fmt.Fprintf(w, "  CA SHA-256: %s\n", p.CAFingerprint)
	}
	for _, pr := range st.Problems {
		fmt.Fprintf(w, "problem:      %s\n", pr)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// fail prints err with advice and returns the exit code.
func fail(c *enrollclient.Client, e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "chclient %s: %v\n", cmd, err)
	var (
		ue *enrollclient.UntrustedCAError
		re *enrollclient.RejectedError
		fe *enrollclient.FingerprintMismatchError
	)
	switch {
	case errors.As(err, &ue) && !ue.Refused:
		fmt.Fprintf(e.stderr, "\nThe CA certificate (%s) has the SHA-256 fingerprint\n  %s\n"+
			"Check it with your clearinghouse operator out of band, then run again with\n"+
			"  --ca-fingerprint %s\n(or --trust-on-first-use to accept it unchecked).\n", enrollclient.Printable(ue.Subject), ue.Fingerprint, ue.Fingerprint)
	case errors.As(err, &fe) && fe.PinnedBy != "":
		fmt.Fprintf(e.stderr, "No key was generated or sent. The expected fingerprint is the CA pinned by %s\n"+
			"(the CA of this device's earlier enrollment or saved request). Check the server URL, and ask\n"+
			"your clearinghouse operator whether the CA was renewed: if so, get its fingerprint out of band,\n"+
			"then run chclient enroll --force --ca-fingerprint NEW-FINGERPRINT (with the other flags).\n", fe.PinnedBy)
	case errors.Is(err, enrollclient.ErrFingerprintMismatch):
		fmt.Fprintf(e.stderr, "No key was generated or sent. Do not continue: check the server URL and the fingerprint\n"+
			"with your clearinghouse operator.\n")
	case errors.Is(err, enrollclient.ErrServerNotTrusted):
		fmt.Fprintf(e.stderr, "Nothing was sent. %s\n", serverTrustAdvice(err, c.RootCAPEM != nil))
	case errors.Is(err, enrollclient.ErrConfig) && c.Password == "" && strings.Contains(err.Error(), "password"):
		fmt.Fprintf(e.stderr, "Give the password with --password-file FILE or the %s environment variable.\n", passwordEnv)
	case errors.Is(err, enrollclient.ErrConfig) && missingFlag(err) != "":
		fmt.Fprintf(e.stderr, "Give it with %s.\n", missingFlag(err))
	case errors.Is(err, enrollclient.ErrHTTPNotAllowed):
		fmt.Fprintf(e.stderr, "Give an https:// --server, or --allow-http in a lab (nothing then proves the server's identity).\n")
	case errors.As(err, &re) && re.Temporary():
		fmt.Fprintf(e.stderr, "The server may accept the same request later; run the command again.\n")
	}
	code := exitCode(err)
	_, serr := os.Stat(filepath.Join(c.Dir, enrollclient.PendingFile))
	switch {
	case errors.Is(err, context.Canceled) && serr == nil:
		code = exitPending // interrupted; the request is saved and resumes next time
	case code == exitPending && errors.As(err, &re) && re.Temporary() && serr != nil:
		code = exitError // a temporary refusal of getcacert with no request saved: nothing is pending
	}
	return code
}

// serverTrustAdvice says what to check when the server's TLS certificate
// was refused; rootCA: --root-ca was given.
func serverTrustAdvice(err error, rootCA bool) string {
	var (
		te *enrollclient.ServerTrustError
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
	)
	if errors.As(err, &te) {
		if host, names, cn, ok := te.HostMismatch(); ok {
			return fmt.Sprintf("The server's certificate does not name %s, the host of --server: %s.\n"+
				"Check the --server name against the names the certificate holds (use the enrollment URL your clearinghouse operator gave).",
				enrollclient.Printable(host), certNames(names, cn))
		}
	}
	switch {
	case errors.As(err, &ua) && rootCA:
		return "The server's certificate is not signed by the root CA given with --root-ca: check that this file is the root of the server's TLS certificate."
	case errors.As(err, &ua):
		return "If the server uses a private root CA, give it with --root-ca FILE."
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "The server's certificate is expired or not yet valid by this device's clock: check the clock (date, NTP), else the server's certificate."
	}
	return "Check the server's TLS certificate with its operator."
}

// certNames lists a certificate's names for the operator (at most 10).
func certNames(names []string, cn string) string {
	if len(names) == 0 {
		s := "it holds no DNS name or IP address (subject alternative names)"
		if cn != "" {
			s += ", only the subject CN " + enrollclient.Printable(cn) + ", which is not used to name the server"
		}
		return s
	}
	const most = 10
	shown := make([]string, 0, most)
	for i, n := range names {
		if i == most {
			break
		}
		shown = append(shown, enrollclient.Printable(n))
	}
	s := "it holds " + strings.Join(shown, ", ")
	if len(names) > most {
		s += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return s
}

func exitCode(err error) int {
	var re *enrollclient.RejectedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, enrollclient.ErrFingerprintMismatch), errors.Is(err, enrollclient.ErrUntrustedCA),
		errors.Is(err, enrollclient.ErrServerNotTrusted):
		return exitUntrusted
	case errors.As(err, &re) && re.Temporary():
		return exitPending // rate limited or a server error: the request stays pending
	case errors.As(err, &re):
		return exitRejected
	case errors.Is(err, enrollclient.ErrPendingTimeout), errors.Is(err, enrollclient.ErrPending):
		return exitPending
	case errors.Is(err, enrollclient.ErrConfig), errors.Is(err, enrollclient.ErrHTTPNotAllowed):
		return exitUsage
	}
	return exitError
}
