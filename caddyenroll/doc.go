// Package caddyenroll turns Caddy into a clearinghouse enrollment server for
// IP telephony devices (gateways, proxies, gatekeepers, SIP phones).
//
// # Why an adapter
//
// The knowledge lives in pure packages that know nothing of Caddy:
// configfile (the clearinghouse configuration file of seed 001, Table 7),
// ca (the operational CA that signs device certificates), wire (the
// enrollment protocol's form variables and status values), routing (the
// route table) and osp (call authorization messages and tokens). Caddy
// gives them what a server needs and they should not reimplement:
// configuration (Caddyfile and JSON), storage shared by a cluster, TLS,
// logs, metrics, the admin API and the command line. This package joins the
// two, and holds what only a running server has: state in storage, locks
// across instances, background work and reloads.
//
// Two identities are kept apart, as the seed requires. The server's SSL
// identity is Caddy's automatic TLS (a public ACME CA in production, Caddy's
// internal CA offline). Device certificates come from a separate
// operational CA whose key lives in Caddy's storage.
//
// Most of the code is about more than one process at a time: instances
// sharing a storage (and the configuration file) act as one server, a
// reload runs the old and the new config side by side for a moment, and the
// operator edits the file while the server runs. Changes to one device run
// under its storage lock; edits of the file go through one path that
// re-reads the operator's version first; state that outlives a config is
// kept in process-wide pools.
//
// # Modules
//
//   - enroll (app): what every site shares — the configuration file
//     (reloaded when it changes), the CAs per profile, the accounts, the
//     enrollment state in storage.
//   - http.handlers.enroll: the getcacert / request / retrieve protocol.
//   - http.handlers.osp: call authorization over OSP (seed 003): route,
//     tokens, usage records.
//   - tls.ca_pool.source.enroll: a trust pool of the operational CAs, for
//     client_auth of devices.
//   - tls.client_auth.verifier.enroll: refuses at the handshake a client
//     certificate this server did not issue or has revoked.
//   - admin.api.enroll: pending requests, approve, reject, devices, revoke,
//     unlock, the CA certificates, issued certificates, call detail records.
//
// # Files
//
// The app and its settings:
//
//   - app.go: the App module: settings, Provision, Start and Stop,
//     Cleanup, Validate.
//   - cas.go: the CA of each profile, opened at Provision and named in the
//     file's crypto item once the config started.
//   - background.go: background work, and its periodic tasks (watching the
//     file, re-reading revocations and the pending count).
//   - filechanges.go: what a new version of the file brings: the route
//     table, the revocation of disabled or removed devices, the state of
//     respelled ones.
//   - authority.go: the settings of one operational CA (profile).
//   - accounts.go, ratelimit.go: operator accounts, and the lockouts that
//     slow down password guessing; hashwork.go: the process's bound on
//     the password hashes in flight; credcache.go: the valid logins
//     already checked, kept for the process across reloads.
//   - sharedfailures.go: those failures and lockouts shared through the
//     storage by a cluster's instances; failurenames.go: the names of their
//     records (a salted, slow hash of a username); knownrecords.go: the
//     addresses known to an account, recorded there too, so that a
//     restart or another instance lets its devices in during a lockout.
//   - caddyfile.go: the Caddyfile's global enroll option and the enroll and
//     osp directives.
//   - command.go: the `caddy enroll …` commands (check, and the admin API's
//     clients).
//   - metrics.go: the Prometheus metrics; logthrottle.go: the throttle of
//     the refusal log lines any client can cause.
//   - events.go: the decisions' and lockouts' events (enroll_pending,
//     enroll_issued, enroll_rejected, enroll_revoked, enroll_lockout)
//     through Caddy's events app.
//
// The configuration file:
//
//   - configstate.go: the parsed file shared by the handlers, and by the
//     configs of a reload; configedit.go: edits that never overwrite the
//     operator's; configreload.go: the versions on disk, taken once
//     settled (reloads and polls).
//   - marks.go: the enrolled marks, batched into few rewrites, kept in
//     storage while the file cannot be written.
//   - cryptoitem.go: the crypto item, which names the CA of each profile.
//   - enablings.go: when devices were enabled again (a late revocation
//     spares the certificates issued since).
//   - devicenames.go: file devices whose names no certificate can hold.
//
// Enrollment:
//
//   - bodytime.go: how long the enroll and osp handlers wait for a body.
//   - handler.go: the enroll handler: body, getcacert, the answer and its
//     log line.
//   - enroll.go: the request/retrieve decision; issuance.go: signing and
//     recording a certificate under the device's lock, held requests, an
//     issued request answered again or resumed after a crash;
//     approval.go: approve and reject of a pending request;
//     issuedread.go: an issued certificate, a pending or a rejected
//     request answered again from storage, writing nothing, when a full
//     disk keeps the device's lock from being taken or the nonce from
//     being stored.
//   - state.go: requests and device records in storage, and the pending
//     index; supersede.go and pendingbounds.go: the pending requests of a
//     device, of an account and in all.
//   - nonces.go, noncesizes.go: client nonces, bound so that a replay is
//     refused, in the buckets of both nonce clocks (the wall clock, and
//     the one from start, which differ after a step).
//   - issuancelimit.go: max_issued_per_device.
//   - requests.go: the janitor of decided requests.
//   - caexpiry.go: the warnings of a CA that ends.
//
// Call authorization (OSP) and the TLS side:
//
//   - osp.go: the osp handler; authz.go: what call authorization shares,
//     and device identification; routes.go: the route table, made again
//     for each version of the file; revocations.go: the revocation state;
//     tokensigners.go: the token signers; transactions.go:
//     transaction ids; cdrs.go: call detail records; destinations.go:
//     the device_protocol and non_osp_device settings.
//   - cdrstore.go: call detail records in storage, in day buckets: stored
//     without duplicates, exported by period, purged; cdrcsv.go: their CSV
//     form.
//   - capool.go, verifier.go: the trust pool and the client certificate
//     verifier.
//
// The administrator and the storage:
//
//   - admin.go: the admin API; admin_body.go: its strict JSON bodies
//     (application/json only, no unknown or repeated fields);
//     admin_unlock.go: clearing lockouts.
//   - admin_requests.go: the requests, pending or decided, approve and
//     reject; admin_devices.go: the devices and their certificates;
//     admin_revoke.go: revocation by serial or device; admin_cdrs.go: the
//     export and purge of call detail records; admin_certificates.go: an
//     issued certificate by serial, and the CA certificates.
//   - storage.go, filelock.go: in-process locks in front of the storage's,
//     and the locks of Caddy's file storage taken without certmagic's
//     refresher.
//
// # Paths
//
// An enrollment: bound the body → wire.DecodeRequest → ssl and enroll
// flags → account check (rate limit, then the cache of valid logins or
// bcrypt under the process's hash bound) → ca.ParseCSR → device lookup
// in the configuration file → nonce binding and state under the device's
// storage lock → approval policy → ca.Sign and Record → the device is
// marked enrolled in the file (atomic write) → wire.AppendResponse.
//
// An authorization: osp.ParseRequest → ssl flag → the device from its
// client certificate (byte for byte one this server issued, not revoked)
// or source address → enabled and enrolled → a query service refused
// (501) → routing.Table.Route (updated from the previous table on every
// change of the file) on the called number, or on the routing number of a
// ported one → osp.AuthorizeTransaction with the token signer (token key
// or, with ca_signed, the CA) and the transaction ids, which name the
// requesting device (transactions.go) → the answer with Content-Length.
package caddyenroll
