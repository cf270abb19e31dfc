// Package enrollclient is the device side of clearinghouse enrollment (seed
// 001, Fig. 3B): what a gateway, proxy or SIP phone does to get a
// certificate from a clearinghouse enrollment server and keep it. Pure Go;
// the protocol's bytes come from package wire. The command chclient
// (cmd/chclient) is a thin shell around it.
//
// # Flow (Fig. 3B) and trust
//
//   - Step 330, the server's identity: Client.ServerURL, an https:// URL.
//     The TLS certificate of the server is verified against the system roots
//     or, given RootCAPEM, against the operator's third-party root only
//     (claim 1: the server's identity rests on SSL and a public key
//     infrastructure). http:// is refused unless AllowHTTP. Redirects are
//     not followed for request and retrieve, whose body holds the password
//     (the seed's protocol has none); getcacert follows at most 3 that keep
//     the URL's scheme, host and port, and the POST (307, 308).
//   - Step 335: operation=getcacert (Table 2; body exactly
//     "operation=getcacert", Content-Type text/plain) returns the CA
//     certificate (Table 3).
//   - Step 340, automated: the CA certificate must match the SHA-256
//     fingerprint given out of band (CAFingerprint); a CA pinned earlier
//     (a saved pending request, or ca.pem from a previous enrollment) is
//     kept pinned. Without any pin the caller must decide: TrustOnFirstUse,
//     or Confirm (the command asks on a terminal); otherwise
//     *UntrustedCAError returns the fingerprint to check. Step 345: on a
//     mismatch or a refusal nothing else happens — no key is generated, no
//     request is sent, no file is written.
//   - Step 350: the key pair is generated here (ECDSA P-256 by default;
//     P-384; RSA 2048/3072/4096 for legacy peers) and never leaves the
//     device; the CSR's subject CN and SAN are DeviceName.
//     operation=request (Table 4: operation, nonce, username, password,
//     device, customer, request — Content-Type text/html) carries a fresh
//     random nonce (32 hex digits), saved with the key. While the answer is
//     status=1 (Table 5) the client sends operation=retrieve, which "only
//     differs in the 'operation' parameter": the same CSR and the same
//     nonce, also from a later process (the server matches device and CSR
//     public key, and binds the nonce to that request), waiting
//     InitialBackoff, doubling to MaxBackoff, for at most MaxWait. Network
//     trouble, HTTP 5xx and 429 and statuses 10 (rate limited) / 14 (server error)
//     while polling are retried within MaxWait.
//   - Table 6, status=0: the certificate is checked before anything is saved
//     (VerifyIssued: the device's public key, the device's name, valid now,
//     chains to the pinned CA for client authentication or has it as direct
//     issuer) and installed. A certificate that is wrong in any respect but
//     its validity period is discarded with the request; one that is only
//     not valid by this device's clock (not yet valid, or expired:
//     ErrNotValidNow) keeps the request and its key, since the server has
//     issued it and may have revoked the one it supersedes: fix the clock
//     and run again to retrieve and install it.
//
// # Files (Client.Dir)
//
//	key.pem       PKCS#8 PEM private key, mode 0600
//	cert.pem      the device certificate, PEM
//	ca.pem        the pinned CA certificate, PEM
//	pending.json  a request in flight, mode 0600: key, CSR, nonce, server nonce,
//	              device/customer ids, username (never the password), CA
//	key.pem.bak   the key the last installation replaced (Renew, a second
//	cert.pem.bak  Enroll), mode 0600, and its certificate: to go back to
//
// pending.json is written before the first message that carries the key,
// so that a request the server stored is never orphaned: Enroll, Poll or
// Renew in a later process resume it (retrieve, with the saved key) instead
// of making a new key. Every file is replaced atomically (temporary file in
// Dir, fsync, rename, fsync of Dir); the temporaries a process killed
// before its rename left (".key.pem.tmp-<digits>", ...) are removed by the
// next Enroll, Poll or Renew, under the lock. Installing a certificate is ordered so
// that a working certificate is never replaced by a broken one:
//
//  1. the verified certificate is journaled into pending.json;
//  2. ca.pem, cert.pem and key.pem are written to temporaries, read back
//     and verified together; the cert.pem and key.pem they replace are
//     copied to cert.pem.bak and key.pem.bak;
//  3. they are renamed in the order ca.pem, cert.pem, key.pem (the key
//     last), and Dir is synced;
//  4. pending.json is removed last.
//
// Before step 3 the old set is untouched; after a crash inside step 3 the
// key, the certificate and the CA are all still in pending.json, and the
// next Enroll/Renew finishes the installation without the server. A lock
// file (.chclient.lock, flock on Unix) keeps two processes out of one Dir.
//
// # Renewal
//
// The seed's certificate "is valid for a certain length of time ... the
// device must re-enroll". Renew re-enrolls with a fresh key once the
// certificate is within RenewWindow of its expiry (default the last third
// of its lifetime; force renews now) and is meant for cron or a systemd
// timer: it does nothing, successfully, when not due. The new key has the
// algorithm and size of the one it replaces unless KeyType is set. The old
// certificate stays installed until the new one is verified.
//
// # Errors
//
// ErrPendingTimeout / ErrPending (still pending, state saved),
// *RejectedError (status ≥ 2, with wire.StatusText), ErrFingerprintMismatch
// (*FingerprintMismatchError), ErrUntrustedCA (*UntrustedCAError),
// ErrServerNotTrusted (*ServerTrustError: "server certificate not trusted:
// …"), ErrBadCertificate and ErrNotValidNow (*CertificateError),
// ErrHTTPNotAllowed, ErrConfig,
// ErrProtocol, ErrBusy, ErrNotEnrolled, ErrNoPending.
//
// Package enrolltest provides a fake server speaking the protocol through
// wire, for tests of code that drives a Client.
package enrollclient
