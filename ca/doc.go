// Package ca is the clearinghouse's operational certificate authority: it
// signs the certificates enrolled IP-telephony devices (gateways,
// gatekeepers, proxies, softswitches) use in later communication with the
// clearinghouse. It is pure Go and knows nothing of Caddy; the Caddy module
// gives it a Store (certmagic.Storage fits as is), a clock and a policy.
//
// # Two PKIs
//
// The seed's enrollment process ("Overview of Exemplary Enrollment
// Process") uses two public key infrastructures on purpose:
//
//   - The SSL identity of the enrollment server. A device opens an SSL
//     channel to the server, whose certificate is signed by a third-party CA
//     that vouches for the server's identity. That certificate is Caddy's
//     business (automatic HTTPS); this package never touches it.
//   - The operational CA, this package. Over that channel the server hands
//     out "CA certificates of a (potentially different) certificate
//     authority" (operation=getcacert, Table 3: CA.Root), and later signs the
//     public key the device sends (operation=request/retrieve, Tables 4-6:
//     CA.Sign). Those certificates secure operational traffic such as call
//     routing and OSP tokens. Keeping the two apart means the operator
//     controls the operational trust anchor without any public CA, and
//     replacing one does not disturb the other.
//
// # The crypto configuration item
//
// The configuration file's `crypto "…"` item (seed Tables 7 and 8) names the
// operational CA in use. Its value is
//
//	<profile>:<algorithm>:sha256:<hex SHA-256 of the root certificate's DER>
//
// for example "modern:p256:sha256:3f1c…e07a" — a name, never key material.
// Open interprets it:
//
//   - absent/empty: new parameters are generated ("If this parameter is
//     absent, the clearinghouse server will automatically generate new
//     cryptographic parameters"), and OpenResult.ReenrollRequired tells the
//     caller to clear every device's `enrolled` flag ("all enrolled devices
//     will have to re-enroll"). OpenResult.CryptoParam is what the item must
//     say from now on.
//   - a value not in the documented form, such as Table 7's placeholder
//     'keys': treated as unknown, exactly like absent, with
//     OpenResult.Replaced set so the caller can log that the old value was
//     replaced. (A value that looks like the documented form but is
//     malformed, such as "modern:p256:sha256:zz", is an error instead, so a
//     typo never silently rotates the CA.)
//   - the documented form naming a CA in storage: that CA is loaded.
//   - the documented form naming a CA storage does not hold: an error
//     ("crypto parameters name CA sha256:… which is not in storage"); the
//     server must not guess.
//
// One item may name a modern and a legacy CA at once, entries separated by
// white space, commas or semicolons; each Open uses the entry of its profile. With
// operator-supplied PEM files (Config.CertFile/KeyFile) the item must name
// their root, or be empty.
//
// # Profiles
//
// ProfileModern (default): a self-signed root (CA:TRUE, pathLen 0, or 1 with
// an intermediate) with an ECDSA P-256 (default), P-384, Ed25519 or RSA
// 2048/3072/4096 key; SHA-2 signatures; optionally an issuing intermediate so
// the root key can be kept offline (delete root.key from storage after
// generation).
//
// ProfileLegacy: seed-era OSP Toolkit clients (shared/vendor/osptoolkit,
// src/ospx509.c, src/ospasn1parse.c, enroll/osptnepenroll.c) verify every
// certificate signature with RSA and MD5 hard-coded, locate the issuer by
// byte-comparing names, parse name values as PrintableString only, read
// dates as UTCTime only and compare the certificate's public key with the
// request's. For them a separate RSA CA (2048 bits by default) with its own
// key, certificate and storage namespace ("clearinghouse/ca/legacy/…", never
// the modern CA's key) signs with md5WithRSAEncryption, through
// certificate-transparency-go's x509 fork (crypto/x509 refuses MD5). Its CA
// certificate is self-signed with MD5-RSA, device certificates are signed by
// it directly, carry the request's public key byte for byte, use
// PrintableString names and UTCTime dates (capped at 2049-12-31), and live
// 90 days by default. The test suite builds the unmodified toolkit's checks
// and runs them on these certificates.
//
// Why MD5 at all: those clients cannot verify anything else, and they are
// the devices the seed describes. MD5 is broken for collision resistance
// (chosen-prefix collisions forged a CA certificate in 2008), so the legacy
// profile is opt-in, separate, and hedged:
//
//   - the attack needs the CA to sign attacker-predictable bytes; every
//     certificate starts its TBS with a 127-bit random serial chosen by the
//     CA after the request arrives, which is the countermeasure that
//     defeated the 2008 attack, and the subject and extensions are set by the
//     CA, not copied from the request;
//   - device certificates are short-lived (90 days) and revocable;
//   - the legacy CA has its own key: an MD5 forgery cannot yield anything the
//     modern CA's devices trust, and the modern CA never signs with MD5;
//   - requests signed with MD5 or SHA-1 are only accepted with Policy.Legacy,
//     and then their signature is still verified (proof of possession);
//     keys below 1024 bits are refused always, 1024-bit keys only with
//     Policy.AllowRSA1024. (The toolkit's enroll.sh makes 512-bit keys:
//     those devices must be changed to make 1024 or more.)
//   - the toolkit compares the request's and certificate's public keys with
//     strncmp, which stops at the first zero byte (inside the
//     AlgorithmIdentifier), so it would not notice a substituted key of the
//     same size; Sign therefore checks the SubjectPublicKeyInfo byte for
//     byte itself before returning any certificate.
//
// # Signing
//
// Sign is the hot path: parse, key policy, signature algorithm policy, proof
// of possession, names, create the certificate (about the cost of doing just
// crypto/x509's parse + CheckSignature + CreateCertificate; see
// bench_test.go). The certificate's subject CN and its only SAN are the
// device's configured name (an IP SAN for an IP literal); a request naming
// anything else is refused, and requested extensions are ignored. EKU is
// clientAuth (plus serverAuth by policy), key usage digitalSignature
// (plus keyEncipherment for RSA keys with serverAuth, where RSA key
// transport applies; RFC 5280 4.2.1.12 does not pair it with clientAuth).
// Validity starts 5 minutes back for clock skew and never outlives the
// issuer. Record persists the issuance separately so the caller chooses when
// (the server does it under its own lock); Issue does both.
//
// # Storage layout
//
// Below the Store, for a CA named <Name> ("modern" or "legacy" by default)
// whose root has SHA-256 fingerprint <fp> (64 hex digits):
//
//	clearinghouse/ca/<Name>/current                       crypto item of the CA generated last, followed by " unnamed" until a configuration names it (CA.MarkNamed); Open adopts an unnamed CA rather than generate another
//	clearinghouse/ca/<Name>/<fp>/ca.json                  profile, algorithm, crypto item, creation time
//	clearinghouse/ca/<Name>/<fp>/root.crt                 root certificate, PEM
//	clearinghouse/ca/<Name>/<fp>/root.key                 root key, PKCS#8 PEM (may be removed when an intermediate exists)
//	clearinghouse/ca/<Name>/<fp>/intermediate.crt|.key    issuing intermediate, when configured
//	clearinghouse/ca/<Name>/<fp>/issued/<serial>.json     one Record per certificate (serial: lower-case hex)
//	clearinghouse/ca/<Name>/<fp>/devices/<device>/<serial> index of a device's certificates (device lower-cased, ':' as %3A)
//	clearinghouse/ca/<Name>/<fp>/revoked.json             revoked serials: time, reason, notAfter (the CRL's source)
//	clearinghouse/ca/<Name>/<fp>/crl.json, crl.der        CRL number and last CRL
//	clearinghouse/ca/<Name>/<fp>/compromised-indexed      marker: this CA's key-compromise revocations are in compromised/
//	clearinghouse/ca/compromised/<key SHA-256>            a public key revoked for key compromise by any CA of the Store (CA.KeyCompromised)
//
// The lock "clearinghouse/ca/<Name>/generate" is held while Open decides
// to adopt or generate a CA for an item that names none, and while
// CA.MarkNamed has the configuration name a CA: processes sharing the
// Store that start together on such an item agree on one CA, whether the
// one that made it has named it yet or not. The lock
// "clearinghouse/ca/<Name>/<fp>/state" is held around every
// read-modify-write of revocation state and the CRL number, so several
// servers sharing the Store stay consistent. A CRL that cannot be stored
// (a full Store) while the stored one lacks a revocation or has expired
// is signed and served from memory (crlunstored.go). CRL numbers are at
// least the signing time in nanoseconds, and above the stored one's and
// those this process signed so: a restarted process or another instance,
// which do not know the numbers of CRLs signed in memory, still number
// theirs above them. Keeping each CA under its
// fingerprint means generating a new one never overwrites the old one: an
// operator who restores the old crypto item gets the old CA back.
//
// # Threat model notes
//
//   - Private keys are PKCS#8 PEM in the Store; NewFileStore writes files
//     0600 in directories 0700, atomically (temporary file, fsync, rename).
//     Operator key files must not be group/world-accessible. Keys are never
//     logged or put in errors; CA's String and GoString print only the
//     crypto item.
//   - Serial numbers are 128 random bits with the top bit cleared (positive,
//     at most 16 DER bytes, 127 bits of entropy), never zero; CA/B Forum asks
//     for 64. 10,000 concurrent signings are tested to yield distinct serials.
//   - Requests are bounded (MaxCSRSize, MaxRSABits) before any signature
//     check, and parsing is fuzzed.
//   - Proof of possession is always checked, whatever the policy.
package ca
