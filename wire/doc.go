// Package wire is the codec of the clearinghouse enrollment protocol
// (seed 001 "Message Formats", Tables 1–6; seed 000 claims 3–18), shared by
// the server (the Caddy handler) and the device-side client. Standard library
// only; no I/O.
//
// # Messages
//
// A device POSTs (HTTP/1.1) a body of ASCII `variable=value` pairs joined by
// '&', escaped per RFC 1738. Variables (Table 1, Table 4):
//
//	operation  getcacert | request | retrieve
//	nonce      random bytes (binary; the toolkit's contain NUL, sent as %00)
//	username   account name       password  account password
//	device     device id (digits) customer  customer id (digits)
//	request    base64 DER PKCS#10 (Table 4, toolkit); Table 1 calls it certreq
//	cacert     base64 DER certificate (Table 1; no known client sends it)
//
// getcacert carries only the operation (Table 2: "operation=getcacert", 19
// bytes); request and retrieve carry all of them (retrieve differs from
// request only in the operation). The server answers 200 with
//
//	status=0&certificate=<base64 DER>\n   issued / CA certificate (Tables 3, 6)
//	status=1&nonce=<nonce>\n              pending (Table 5)
//	status=N&error=<reason>\n             failure, N ≥ 2 (see Statuses)
//
// DecodeRequest / EncodeRequest handle requests, AppendResponse /
// DecodeResponse answers, and DecodeBase64Loose the base64 that devices and
// form decoders mangle. Statuses lists the status table; StatusForError maps
// a decode error to the status to answer with.
//
// # The OSP Toolkit's enroll client, and what it forces on the wire
//
// The reference client is `enroll` from OSP Toolkit 4.33.1
// (enroll/osptnepenroll.c, osptnepinit.c; macros in include/osp/ospossys.h).
// EncodeRequest reproduces its bodies byte for byte:
//
//   - getcacert: the literal "operation=getcacert", Content-Type text/plain
//     (OSPPCreateCARetrievalRequest, OSPC_COMM_TEXT_MSG).
//   - request/retrieve: operation, nonce, username, password, device,
//     customer, request — in that order (OSPPCreateEnrollmentRequestBody),
//     Content-Type text/html (OSPC_ENROLL_CONTENT_TYPE). Every value byte that
//     is not isalnum() is written "%.2X" (upper-case hex), so the base64 CSR
//     (one line, EVP_EncodeBlock) has its '+', '/', '=' as %2B, %2F, %3D.
//   - The nonce is 16 bytes built by OSPPFillBufWithRandomBytes from decimal
//     rand_r() strings through OSPM_STRNCPY, a macro that also writes NUL
//     into the last byte copied: every chunk ends in NUL, e.g.
//     "150276791\x0019029\x00", sent as "150276791%0019029%00". A NUL in a
//     nonce is therefore normal input, never an error.
//
// Answers must be shaped for how it reads them:
//
//   - It reads the body only when the status line contains " 200 " and
//     Content-Length and Content-Type are present; failures are reported in
//     status=, not in the HTTP status.
//   - It copies the body with the same OSPM_STRNCPY, losing the LAST BYTE.
//     Every answer therefore ends in "\n", the byte it may lose.
//   - It finds a variable with strstr + sscanf("%*[^=]=%[^& ]"): values end at
//     '&' or ' ', and are NOT URL-decoded. The certificate goes out as raw
//     standard base64 ('+', '/', '=' unescaped) on one line; nonce and error
//     are %XX-escaped so they hold no '&', space or newline.
//   - status must be all digits (OSPPValidateDigitString), else the answer is
//     refused; 0 = OK, 1 = pending, anything else is a failure and becomes
//     the process exit code, which is why failures start at 2 and stay small.
//   - getcacert reads `certificate=`; request/retrieve search for "cert", so
//     any variable whose name starts with "cert" works there (Table 6's
//     `cert=`). This server always writes `certificate=`, which both accept.
//
// # Decoding choices
//
// DecodeRequest ignores the Content-Type; accepts '+' as space (HTML forms)
// except inside base64 values, where '+' is kept; matches variable names and
// the operation value case-insensitively (storing lower case); accepts the
// CSR as request= or certreq= (both present and different is an error);
// keeps unknown variables in Request.Extra; refuses duplicates, bad %-escapes,
// non-digit ids, control bytes or invalid UTF-8 in username/password; bounds
// the body (MaxBody), the pair count (MaxPairs) and each value. Errors are
// *DecodeError{Field, Msg, Err} with Err one of ErrMalformed, ErrTooLarge,
// ErrDuplicate, ErrConflict, ErrMissing, ErrUnsupportedOperation.
package wire
