package caddyenroll

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("enroll", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("enroll", parseHandlerDirective)
	httpcaddyfile.RegisterDirectiveOrder("enroll", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterHandlerDirective("osp", parseOSPDirective)
	httpcaddyfile.RegisterDirectiveOrder("osp", httpcaddyfile.Before, "respond")
}

// parseGlobalOption parses the global `enroll` option into the enroll app:
//
//	enroll {
//	    config_file      <path>
//	    approval         auto|manual
//	    unknown_devices  pending|refuse
//	    watch_interval   <duration>
//	    backups          <n>
//	    account          <username> <bcrypt-hash> [<customer>]
//	    failures_allowed <n>
//	    lockout          <first> <max>
//	    max_destinations <n>
//	    device_address   <device> <host[:port]>
//	    device_protocol  <device> sip|h323-Q931|h323-LRQ|iax|fax-T37|fax-T38|skype|smpp|xmpp|sms
//	    non_osp_device   <device>...
//	    nonce_retention  <duration>
//	    max_pending      <n>
//	    max_pending_per_account <n>
//	    max_issued_per_device <n> [<window>]
//	    ca [modern|legacy] {
//	        algorithm     p256|p384|ed25519|rsa2048|rsa3072|rsa4096
//	        validity      <duration>
//	        root_validity <duration>
//	        intermediate
//	        cert_file     <path>
//	        key_file      <path>
//	        common_name   <name>
//	        organization  <name>
//	        legacy_csr    on|off
//	        allow_rsa1024
//	        server_auth
//	        crl_validity  <duration>
//	        crl_url       <url>...
//	        issuer_url    <url>...
//	    }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	d.Next() // option name
	if existing != nil {
		return nil, d.Err("the enroll global option may appear only once")
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		name := d.Val()
		switch d.Val() {
		case "account", "device_address", "device_protocol", "non_osp_device", "ca": // repeatable
		default:
			if err := once(d, seen); err != nil {
				return nil, err
			}
		}
		switch d.Val() {
		case "config_file":
			if !d.AllArgs(&app.ConfigFile) {
				return nil, d.ArgErr()
			}
		case "approval":
			if !d.AllArgs(&app.Approval) {
				return nil, d.ArgErr()
			}
		case "unknown_devices":
			if !d.AllArgs(&app.UnknownDevices) {
				return nil, d.ArgErr()
			}
		case "watch_interval":
			dur, err := nonZero(d, durationArg, "; a negative duration re-reads the file only on reload")
			if err != nil {
				return nil, err
			}
			app.WatchInterval = dur
		case "nonce_retention":
			dur, err := nonZero(d, durationArg, "")
			if err != nil {
				return nil, err
			}
			app.NonceRetention = dur
		case "max_pending":
			n, err := nonZero(d, intArg, "")
			if err != nil {
				return nil, err
			}
			app.MaxPending = n
		case "max_pending_per_account":
			n, err := nonZero(d, intArg, "")
			if err != nil {
				return nil, err
			}
			app.MaxPendingPerAccount = n
		case "max_issued_per_device":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return nil, d.Errf("max_issued_per_device: %q is not a positive number", args[0])
			}
			app.MaxIssuedPerDevice = n
			if len(args) == 2 {
				dur, err := durationValue(d, "max_issued_per_device window", args[1])
				if err != nil {
					return nil, err
				}
				if dur <= 0 {
					return nil, d.Errf("max_issued_per_device: window %q is not a positive duration", args[1])
				}
				app.IssuanceWindow = caddy.Duration(dur)
			}
		case "backups":
			n, err := intArg(d)
			if err != nil {
				return nil, err
			}
			app.Backups = &n
		case "failures_allowed":
			n, err := nonZero(d, intArg, "")
			if err != nil {
				return nil, err
			}
			app.FailuresAllowed = n
		case "lockout":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.ArgErr()
			}
			first, err := durationValue(d, "lockout", args[0])
			if err != nil {
				return nil, err
			}
			most, err := durationValue(d, "lockout", args[1])
			if err != nil {
				return nil, err
			}
			if first == 0 || most == 0 { // the JSON's zero: the default, not "none"
				return nil, d.Errf("lockout 0 is not a setting: leave lockout out for its default (1s 15m)")
			}
			app.LockoutBase, app.LockoutMax = caddy.Duration(first), caddy.Duration(most)
		case "max_destinations":
			n, err := nonZero(d, intArg, "")
			if err != nil {
				return nil, err
			}
			app.MaxDestinations = n
		case "device_address":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("device_address needs <device> <host[:port]>")
			}
			if app.DeviceAddresses == nil {
				app.DeviceAddresses = make(map[string]string)
			}
			for other := range app.DeviceAddresses {
				switch {
				case other == args[0]:
					return nil, d.Errf("device_address %s is given twice", args[0])
				case configfile.DeviceKey(other) == configfile.DeviceKey(args[0]):
					return nil, d.Errf("device_address %s is given twice (as %s)", args[0], other)
				}
			}
			app.DeviceAddresses[args[0]] = args[1]
		case "device_protocol":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("device_protocol needs <device> <protocol> (one of %s)", strings.Join(osp.Protocols(), ", "))
			}
			if err := checkProtocol(args[0], args[1]); err != nil {
				return nil, d.Err(err.Error())
			}
			if app.DeviceProtocols == nil {
				app.DeviceProtocols = make(map[string]string)
			}
			for other := range app.DeviceProtocols {
				if configfile.DeviceKey(other) == configfile.DeviceKey(args[0]) {
					return nil, d.Errf("device_protocol %s is given twice (as %s)", args[0], other)
				}
			}
			app.DeviceProtocols[args[0]] = args[1]
		case "non_osp_device":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("non_osp_device needs <device>...")
			}
			for _, name := range args {
				for _, other := range app.NonOSPDevices {
					if configfile.DeviceKey(other) == configfile.DeviceKey(name) {
						return nil, d.Errf("non_osp_device %s is given twice (as %s)", name, other)
					}
				}
				app.NonOSPDevices = append(app.NonOSPDevices, name)
			}
		case "account":
			args := d.RemainingArgs()
			if len(args) < 2 || len(args) > 3 {
				return nil, d.Errf("account needs <username> <bcrypt-hash> [<customer>]")
			}
			acct := Account{Username: args[0], Password: args[1]}
			if len(args) == 3 {
				acct.Customer = args[2]
			}
			app.Accounts = append(app.Accounts, acct)
		case "ca":
			profile := profileModern
			if d.NextArg() {
				profile = d.Val()
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			if profile != profileModern && profile != profileLegacy {
				return nil, d.Errf("ca profile must be %s or %s, not %q", profileModern, profileLegacy, profile)
			}
			if app.Authorities == nil {
				app.Authorities = make(map[string]*Authority)
			}
			if app.Authorities[profile] != nil {
				return nil, d.Errf("ca %s is defined twice", profile)
			}
			auth, err := parseAuthority(d)
			if err != nil {
				return nil, err
			}
			app.Authorities[profile] = auth
		default:
			return nil, d.Errf("unknown enroll option %q", d.Val())
		}
		if name != "ca" {
			if err := noBlock(d, name); err != nil {
				return nil, err
			}
		}
	}
	return httpcaddyfile.App{Name: "enroll", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseAuthority(d *caddyfile.Dispenser) (*Authority, error) {
	auth := new(Authority)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if err := once(d, seen); err != nil {
			return nil, err
		}
		var err error
		switch d.Val() {
		case "algorithm":
			if !d.AllArgs(&auth.Algorithm) {
				return nil, d.ArgErr()
			}
		case "validity":
			auth.Validity, err = nonZero(d, durationArg, "")
		case "root_validity":
			auth.RootValidity, err = nonZero(d, durationArg, "")
		case "crl_validity":
			auth.CRLValidity, err = nonZero(d, durationArg, "")
		case "intermediate":
			err = noArgs(d)
			auth.Intermediate = true
		case "cert_file":
			if !d.AllArgs(&auth.CertFile) {
				return nil, d.ArgErr()
			}
		case "key_file":
			if !d.AllArgs(&auth.KeyFile) {
				return nil, d.ArgErr()
			}
		case "common_name":
			if !d.AllArgs(&auth.CommonName) {
				return nil, d.ArgErr()
			}
		case "organization":
			if !d.AllArgs(&auth.Organization) {
				return nil, d.ArgErr()
			}
		case "legacy_csr":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.ArgErr()
			}
			on := v == "on"
			if !on && v != "off" {
				return nil, d.Errf("legacy_csr must be on or off, not %q", v)
			}
			auth.LegacyCSR = &on
		case "allow_rsa1024":
			err = noArgs(d)
			auth.AllowRSA1024 = true
		case "server_auth":
			err = noArgs(d)
			auth.ServerAuth = true
		case "crl_url", "issuer_url":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return nil, d.ArgErr()
			}
			if err := ca.CheckPublishURLs(urls); err != nil {
				return nil, d.Errf("%s: %v", name, err)
			}
			if name == "crl_url" {
				auth.CRLURLs = urls
			} else {
				auth.IssuerURLs = urls
			}
		default:
			return nil, d.Errf("unknown ca option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
		if err := noBlock(d, name); err != nil {
			return nil, err
		}
	}
	return auth, nil
}

// parseHandlerDirective parses the `enroll` site directive:
//
//	enroll [modern|legacy] {
//	    profile         modern|legacy
//	    content_type    text/html|text/plain
//	    plain_getcacert
//	    max_body        <size>
//	}
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(Handler)
	d := h.Dispenser
	d.Next() // directive name
	seen := make(map[string]bool)
	if d.NextArg() {
		hd.Profile = d.Val()
		seen["profile"] = true // `enroll legacy { profile modern }` is a contradiction
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		name := d.Val()
		if err := once(d, seen); err != nil {
			return nil, err
		}
		switch d.Val() {
		case "profile":
			if !d.AllArgs(&hd.Profile) {
				return nil, d.ArgErr()
			}
		case "content_type":
			if !d.AllArgs(&hd.ContentType) {
				return nil, d.ArgErr()
			}
		case "plain_getcacert":
			if err := noArgs(d); err != nil {
				return nil, err
			}
			hd.PlainGetCACert = true
		case "max_body":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.ArgErr()
			}
			// the exact size, however large: one past what 64 bits hold is
			// out of range as any other, not "too large: …"
			n, err := humanize.ParseBigBytes(v)
			if err != nil {
				return nil, d.Errf("max_body %q is not a size: write a number of bytes, with a unit or not, such as 2KiB, 64KiB or 4096", v)
			}
			if n.Sign() <= 0 || !n.IsInt64() { // (past MaxInt64 it would wrap around to a negative size)
				return nil, d.Errf("max_body must be between 1 KiB and 64 KiB, not %s", v)
			}
			hd.MaxBody = n.Int64()
		default:
			return nil, d.Errf("unknown enroll directive option %q", d.Val())
		}
		if err := noBlock(d, name); err != nil {
			return nil, err
		}
	}
	return hd, nil
}

// once refuses a single-valued subdirective met before in its block (seen):
// the last would otherwise silently win.
func once(d *caddyfile.Dispenser, seen map[string]bool) error {
	name := d.Val()
	if seen[name] {
		return d.Errf("%s may appear only once", name)
	}
	seen[name] = true
	return nil
}

// noArgs refuses arguments after a flag (d at its name): the rest of its
// line would otherwise be read as the next option, `plain_http tokens
// unsigned` setting both.
func noArgs(d *caddyfile.Dispenser) error {
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no arguments, not %q", name, d.Val())
	}
	return nil
}

// noBlock refuses a block after an option that takes none (d past its
// arguments): the Dispenser would read what the block holds as more
// options of the enclosing one, `account a HASH { approval manual }`
// setting the approval.
func noBlock(d *caddyfile.Dispenser, name string) error {
	if d.NextBlock(d.Nesting()) {
		d.Prev() // the brace, on the option's line
		return d.Errf("%s takes no block", name)
	}
	return nil
}

// nonZero reads an option's argument with arg and refuses 0: in the JSON
// config an absent or zero value is the default, and an operator who writes
// 0 means something else.
func nonZero[T caddy.Duration | int](d *caddyfile.Dispenser, arg func(*caddyfile.Dispenser) (T, error), hint string) (T, error) {
	name := d.Val()
	v, err := arg(d)
	if err == nil && v == 0 {
		return 0, d.Errf("%s 0 is not a setting: leave %s out for its default%s", name, name, hint)
	}
	return v, err
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	var v string
	if !d.AllArgs(&v) {
		return 0, d.ArgErr()
	}
	dur, err := durationValue(d, name, v)
	return caddy.Duration(dur), err
}

// durationValue parses v, the value of option name, as Caddy does; a value
// that is not a duration is refused naming the option, the value as
// written and what is expected.
func durationValue(d *caddyfile.Dispenser, name, v string) (time.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s %q is not a duration: write a number and a unit (ns, us, ms, s, m, h, d), such as 2s, 15m or 30d", name, v)
	}
	return dur, nil
}

func intArg(d *caddyfile.Dispenser) (int, error) {
	name := d.Val()
	var v string
	if !d.AllArgs(&v) {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) {
		return 0, d.Errf("%s %s is out of range", name, v)
	}
	if err != nil {
		return 0, d.Errf("%s %q is not an integer", name, v)
	}
	return n, nil
}

// parseOSPDirective parses the `osp` site directive:
//
//	osp {
//	    tokens           signed|ca_signed|unsigned
//	    profile          modern|legacy
//	    token_validity   <duration>
//	    max_destinations <n>
//	    source_address   <ip> <device>
//	    plain_http
//	}
func parseOSPDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(OSPHandler)
	d := h.Dispenser
	d.Next() // directive name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		name := d.Val()
		if d.Val() != "source_address" { // repeatable
			if err := once(d, seen); err != nil {
				return nil, err
			}
		}
		var err error
		switch d.Val() {
		case "tokens":
			if !d.AllArgs(&hd.Tokens) {
				return nil, d.ArgErr()
			}
		case "profile":
			if !d.AllArgs(&hd.Profile) {
				return nil, d.ArgErr()
			}
		case "token_validity":
			hd.TokenValidity, err = nonZero(d, durationArg, "")
		case "max_destinations":
			hd.MaxDestinations, err = nonZero(d, intArg, "")
		case "plain_http":
			err = noArgs(d)
			hd.PlainHTTP = true
		case "source_address":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("source_address needs <ip> <device>")
			}
			ip, perr := netip.ParseAddr(args[0])
			if perr != nil {
				return nil, d.Errf("source_address: %q is not an IP address", args[0])
			}
			if ip.Zone() != "" {
				return nil, d.Errf("source_address %s has a zone, which is never matched: write %s", args[0], ip.WithZone(""))
			}
			if hd.SourceAddresses == nil {
				hd.SourceAddresses = make(map[string]string)
			}
			for other := range hd.SourceAddresses {
				switch {
				case other == args[0]:
					return nil, d.Errf("source_address %s is given twice", args[0])
				case netip.MustParseAddr(other).Unmap() == ip.Unmap():
					return nil, d.Errf("source_address %s is given twice (as %s)", args[0], other)
				}
			}
			hd.SourceAddresses[args[0]] = args[1]
		default:
			return nil, d.Errf("unknown osp directive option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
		if err := noBlock(d, name); err != nil {
			return nil, err
		}
	}
	return hd, nil
}
