// Command chclient enrolls a device — a gateway, proxy, gatekeeper or SIP
// phone — with a clearinghouse enrollment server (the Caddy plugin in this
// repository, or any server speaking seed 001's protocol) and keeps its
// certificate renewed. It is the device side of seed 001's Fig. 3B, built on
// package enrollclient; the protocol bytes come from package wire.
//
// Typical use: the clearinghouse operator gives the device's administrator
// the enrollment URL, an account, the device and customer ids and — out of
// band — the SHA-256 fingerprint of the clearinghouse CA certificate:
//
//	chclient enroll --server https://enroll.example.com/ \
//	    --ca-fingerprint 3F:A2:...:09 --device-name gw1.example.com \
//	    --device-id 134217728 --customer 0 --username acme \
//	    --password-file /etc/chclient/password --dir /etc/chclient
//
// and a daily timer runs the same line with "renew" instead of "enroll".
//
//	Usage: chclient <command> [flags]
//
//	Enroll this device (gateway, proxy, gatekeeper, SIP phone) with a clearinghouse
//	enrollment server: fetch the CA certificate over verified HTTPS, check it
//	against the fingerprint you were given, make a key pair on this device,
//	request a certificate, install it, and renew it before it expires.
//
//	Commands:
//	  enroll   enroll, or resume a pending enrollment; waits up to --max-wait for approval
//	  status   show what --dir holds; with a pending request and a password, ask the server once
//	  renew    re-enroll with a new key when the certificate is in its renewal window,
//	             key.pem does not hold its key, or --force
//	  help     show this text
//
//	Flags:
//	  --server URL             enrollment URL, e.g. https://enroll.example.com/
//	  --ca-fingerprint HEX     SHA-256 fingerprint of the clearinghouse CA certificate,
//	                           obtained out of band (colons optional, any case)
//	  --trust-on-first-use     accept the CA certificate without a fingerprint; it is
//	                           pinned in --dir afterwards
//	  --root-ca FILE           PEM root CA for the server's TLS certificate (default: system roots)
//	  --allow-http             allow an http:// server URL (the server is then NOT authenticated)
//	  --device-name NAME       this device's DNS name (or IP address): the certificate's subject
//	  --device-id ID           clearinghouse-assigned device id (digits)
//	  --customer ID            clearinghouse-assigned customer id (digits)
//	  --username NAME          clearinghouse account name
//	  --password-file FILE     file holding the account password (first line); or set
//	                           CHCLIENT_PASSWORD. There is no --password flag: a password
//	                           on the command line is visible to every user of the machine.
//	  --key-type TYPE          p256 (default), p384, rsa2048, rsa3072, rsa4096;
//	                           renew: default the type and size of the key it replaces
//	  --csr-field NAME         variable carrying the CSR: request (default) or certreq
//	  --dir DIR                where key.pem, cert.pem, ca.pem, pending.json live (default .)
//	  --max-wait DURATION      how long enroll/renew wait for approval (default 10m; 0 = do not wait)
//	  --poll-interval DURATION first wait between retrieves (default 2s), doubling each time
//	  --max-poll-interval DURATION
//	                           longest wait between retrieves (default 1m)
//	  --renew-window FRACTION  renew when this fraction of the lifetime is left (default 0.3333)
//	  --force                  renew: renew now; enroll: enroll even if a valid certificate exists
//	  --quiet                  no progress output on stderr
//
//	A pending request is saved in --dir (pending.json, with its key): run the same
//	enroll (or renew) again to keep waiting; it resumes with the saved key.
//	Fields not given on a resume (server, device, customer, username) are taken
//	from the saved request; the password is never saved. renew and enroll --force
//	keep the key and certificate they replace as key.pem.bak and cert.pem.bak.
//
//	Exit status:
//	  0  enroll: certificate installed (or already enrolled); status: a valid
//	     certificate is installed; renew: renewed, or not yet due (printed)
//	  1  error (network, files, invalid certificate from the server, ...);
//	     status: nothing enrolled, or the installed files are unusable
//	     renew: not renewed, the certificate having expired with its CA
//	  2  usage: bad or missing flag, --password given, http:// without --allow-http
//	  3  pending: the request waits for approval (saved; run the command again)
//	  4  rejected or refused by the server (status >= 2; the status is printed);
//	     status: the server's last answer refused the saved request
//	  5  CA fingerprint mismatch, CA trust refused or not decided, or the server's
//	     TLS certificate not trusted
package main
