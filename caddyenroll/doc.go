// Package caddyenroll turns Caddy into a clearinghouse enrollment server for
// IP telephony devices (gateways, proxies, gatekeepers, SIP phones).
//
// It is the thin adapter between Caddy and the pure packages that hold the
// knowledge: configfile (the clearinghouse configuration file of seed 001,
// Table 7), ca (the operational CA that signs device certificates), wire
// (the enrollment protocol's form variables and status values), routing
// (the route table) and osp (call authorization messages and tokens). Caddy gives
// it configuration (Caddyfile and JSON), storage, TLS, logs, metrics, the
// admin API and the command line.
//
// Two identities are kept apart, as the seed requires: the server's SSL
// identity is Caddy's automatic TLS (a public ACME CA in production, Caddy's
// internal CA offline), and device certificates come from a separate
// operational CA whose key lives in Caddy's storage.
//
// Modules:
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
//     the CA certificates, issued certificates, call detail records.
//
// The path of an enrollment: bound the body → wire.DecodeRequest → ssl and
// enroll flags → account check (bcrypt, rate limit) → ca.ParseCSR → device
// lookup in the configuration file → nonce binding and state under the
// device's storage lock → approval policy → ca.Sign and Record → the device
// is marked enrolled in the file (atomic write) → wire.AppendResponse.
//
// The path of an authorization: osp.ParseRequest → ssl flag → the device
// from its client certificate (byte for byte one this server issued, not
// revoked) or source address → enabled and enrolled → routing.Table.Route
// (rebuilt on every change of the file) on the called number, or on the
// routing number of a ported one → osp.AuthorizeTransaction with the
// token signer and the transaction ids, which name the requesting device
// (transactions.go) → the answer with Content-Length.
package caddyenroll
