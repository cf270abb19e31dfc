package caddyenroll

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "enroll",
		Usage: "check <file> | pending | requests | approve <id> | reject <id> | devices | revoke ... | unlock ... | certificate <serial> | ca | cdrs ...",
		Short: "Checks configuration files and administers device enrollment",
		Long: `
Tools for the clearinghouse enrollment server.

  check <file>          validate a clearinghouse configuration file: exit 0 with
                        a summary, or exit 1 with one FILE:LINE: message per
                        error (on stderr), as the server refuses it (an
                        empty file too); devices whose names cannot be in a
                        certificate are warned about (on stderr, exit 0)
  pending               list enrollment requests waiting for approval
  requests              list all requests (--state pending|issued|rejected);
                        both in id order, every page, or one page of --limit
                        requests; --after starts after that id
  approve <id>          issue the certificate of a pending request (--group
                        places a device the file lacks; default group "")
  reject <id>           refuse a pending request
  devices               list devices and their certificates
  revoke                revoke a certificate (--serial) or all of a device's
                        (--device)
  unlock                clear the failed logins and lockout of an account
                        (--username) and/or a client address
                        (--client-address)
  certificate <serial>  show an issued certificate in readable form (the full
                        serial, hex, colons allowed)
  ca                    show the operational CA certificate and its fingerprint
  cdrs                  export call detail records (--format csv|json, --since
                        and --until select UTC days YYYY-MM-DD, inclusive)
  cdrs purge            delete the call detail records of the days before
                        --before

All but check talk to a running Caddy's admin API (--address, or the admin
address of --config). All of those but the cdrs export (--format json) take
--json: print the admin API's JSON answer, indented, instead of the table or
the readable form; a list read a page at a time is one array of every page.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(checkCommand())
			cmd.AddCommand(adminCommand("pending", "List pending enrollment requests", func(c *cobra.Command) {
				pageFlags(c)
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				return listRequest("/enroll/pending", f, url.Values{})
			}))
			cmd.AddCommand(adminCommand("requests", "List enrollment requests", func(c *cobra.Command) {
				c.Flags().String("state", "", "only requests in this state (pending, issued, rejected)")
				pageFlags(c)
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				q := url.Values{}
				if s, _ := f.cmd.Flags().GetString("state"); s != "" {
					q.Set("state", s)
				}
				return listRequest("/enroll/requests", f, q)
			}))
			cmd.AddCommand(adminCommand("approve <id>", "Approve a pending request", func(c *cobra.Command) {
				c.Args = cobra.ExactArgs(1)
				c.Flags().String("group", "", `group of an approved device that the configuration file lacks; without it, the default group ""`)
				jsonFlag(c)
			}, func(f adminFlags, args []string) (string, string, any, error) {
				g, _ := f.cmd.Flags().GetString("group")
				id, err := pathSegment("request id", args[0])
				return http.MethodPost, "/enroll/approve/" + id, approveBody{Group: g}, err
			}))
			cmd.AddCommand(adminCommand("reject <id>", "Reject a pending request", func(c *cobra.Command) {
				c.Args = cobra.ExactArgs(1)
				c.Flags().String("reason", "", "reason, recorded with the request")
				jsonFlag(c)
			}, func(f adminFlags, args []string) (string, string, any, error) {
				r, _ := f.cmd.Flags().GetString("reason")
				id, err := pathSegment("request id", args[0])
				return http.MethodPost, "/enroll/reject/" + id, rejectBody{Reason: r}, err
			}))
			cmd.AddCommand(adminCommand("devices", "List devices and their certificates", jsonFlag, func(f adminFlags, _ []string) (string, string, any, error) {
				return http.MethodGet, "/enroll/devices", nil, nil
			}))
			cmd.AddCommand(adminCommand("revoke", "Revoke certificates", func(c *cobra.Command) {
				c.Flags().String("serial", "", "serial number (hex) of the certificate")
				c.Flags().String("device", "", "revoke every certificate of this device")
				c.Flags().Int("reason", 0, "RFC 5280 reason code (0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation, 9 privilegeWithdrawn)")
				c.Flags().Bool("forget-ids", false, "with --device: also forget the device and customer ids it first enrolled with")
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				serial, _ := f.cmd.Flags().GetString("serial")
				device, _ := f.cmd.Flags().GetString("device")
				reason, _ := f.cmd.Flags().GetInt("reason")
				forget, _ := f.cmd.Flags().GetBool("forget-ids")
				if (serial == "") == (device == "") {
					return "", "", nil, errors.New("give exactly one of --serial or --device")
				}
				if forget && device == "" {
					return "", "", nil, errors.New("--forget-ids needs --device")
				}
				return http.MethodPost, "/enroll/revoke", revokeBody{Serial: serial, Device: device, Reason: &reason, ForgetIDs: forget}, nil
			}))
			cmd.AddCommand(adminCommand("unlock", "Clear the failed logins and lockout of an account or a client address", func(c *cobra.Command) {
				c.Flags().String("username", "", "the account's username")
				c.Flags().String("client-address", "", "the client address (IPv6: its /64); with --username also the account at that address")
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				user, _ := f.cmd.Flags().GetString("username")
				addr, _ := f.cmd.Flags().GetString("client-address")
				if user == "" && addr == "" {
					return "", "", nil, errors.New("give --username, --client-address or both")
				}
				return http.MethodPost, "/enroll/unlock", unlockBody{Username: user, Address: addr}, nil
			}))
			cdrs := adminCommand("cdrs", "Export stored call detail records", func(c *cobra.Command) {
				c.Args = cobra.NoArgs // a mistyped subcommand must not export everything
				c.Flags().String("format", "csv", "csv or json")
				c.Flags().String("since", "", "first UTC day to export (YYYY-MM-DD)")
				c.Flags().String("until", "", "last UTC day to export (YYYY-MM-DD)")
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				format, _ := f.cmd.Flags().GetString("format")
				if format != "csv" && format != "json" {
					return "", "", nil, errors.New("--format must be csv or json")
				}
				q := url.Values{"format": {format}}
				for _, name := range []string{"since", "until"} {
					if v, _ := f.cmd.Flags().GetString(name); v != "" {
						q.Set(name, v)
					}
				}
				return http.MethodGet, "/enroll/cdrs?" + q.Encode(), nil, nil
			})
			cdrs.AddCommand(adminCommand("purge", "Delete the call detail records of the days before --before", func(c *cobra.Command) {
				c.Args = cobra.NoArgs
				c.Flags().String("before", "", "delete the records of the UTC days before this one (YYYY-MM-DD, at most tomorrow)")
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				before, _ := f.cmd.Flags().GetString("before")
				if before == "" {
					return "", "", nil, errors.New("--before is required")
				}
				return http.MethodDelete, "/enroll/cdrs?" + url.Values{"before": {before}}.Encode(), nil, nil
			}))
			cmd.AddCommand(cdrs)
			cmd.AddCommand(adminCommand("certificate <serial>", "Show an issued certificate", func(c *cobra.Command) {
				c.Args = cobra.ExactArgs(1)
				jsonFlag(c)
			}, func(f adminFlags, args []string) (string, string, any, error) {
				serial, err := pathSegment("serial", args[0])
				return http.MethodGet, "/enroll/certificates/" + serial, nil, err
			}))
			cmd.AddCommand(adminCommand("ca", "Show the operational CA certificate and fingerprint", func(c *cobra.Command) {
				c.Flags().String("profile", profileModern, "CA profile (modern or legacy)")
				jsonFlag(c)
			}, func(f adminFlags, _ []string) (string, string, any, error) {
				p, _ := f.cmd.Flags().GetString("profile")
				profile, err := pathSegment("profile", p)
				return http.MethodGet, "/enroll/ca/" + profile, nil, err
			}))
		},
	})
}

// pathSegment is v as one segment of an admin API path. Request ids,
// serials and profiles hold no "/", "\\", "?", "#", "%", space or control
// character and are not "." or "..": one that does is refused here, not
// sent on to another route of the admin API (Go's client follows the
// redirect that cleans "approve/../../load" to Caddy's /load).
func pathSegment(what, v string) (string, error) {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\?#% ") ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r > 0x7e }) {
		return "", fmt.Errorf("%s %q: not a valid %s", what, v, what)
	}
	return url.PathEscape(v), nil
}

func checkCommand() *cobra.Command {
	return &cobra.Command{
		Use:          "check <file>",
		Short:        "Validate a clearinghouse configuration file",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		},
	}
}

// runCheck prints a summary of a valid file on out, or one FILE:LINE:
// message per error on errOut, and returns an error (exit status 1; cobra
// prints it on stderr). It reads the file as the server does at a start
// or a reload (readConfigFile), so that it refuses what the server
// refuses: an empty file too.
func runCheck(out, errOut io.Writer, path string) error {
	f, _, err := readConfigFile(path)
	if err != nil {
		var list configfile.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(errOut, e.Error())
			}
			if list.Truncated() {
				// the last line is the cut, not an error of its own
				return fmt.Errorf("%s: more than %d errors (parsing stopped)", path, len(list)-1)
			}
			return fmt.Errorf("%s: %d error(s)", path, len(list))
		}
		return err // printed once, by cobra
	}
	for _, u := range unissuableDevices(f) {
		fmt.Fprintln(errOut, u.warning(path))
	}
	fmt.Fprint(out, f.Summary())
	return nil
}

type adminFlags struct {
	cmd *cobra.Command
}

// pageFlags adds the flags of a list read a page at a time.
func pageFlags(c *cobra.Command) {
	c.Flags().Int("limit", 0, "list one page of at most this many requests (1 to 10000; default: every page)")
	c.Flags().String("after", "", "list the requests whose id follows this one (the last of the previous page)")
}

// jsonFlag adds --json, named as in `caddy list-modules --json`: scripts
// parse the admin API's answer, not a table whose empty columns (USER,
// CLIENT) shift awk's fields.
func jsonFlag(c *cobra.Command) {
	c.Flags().Bool("json", false, "print the admin API's JSON answer (indented; a list: one array of every page) instead of the table")
}

// listRequest is the request of a list's first page: q with the page flags.
func listRequest(path string, f adminFlags, q url.Values) (string, string, any, error) {
	if n, _ := f.cmd.Flags().GetInt("limit"); n != 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	if a, _ := f.cmd.Flags().GetString("after"); a != "" {
		q.Set("after", a)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return http.MethodGet, path, nil, nil
}

// nextPage is the next page of a list that the answer to uri names (its
// Link rel="next", RFC 8288), or "" when uri was the last. The next page
// must be of the same list, after a greater id: an answer that names
// anything else would be followed without end.
func nextPage(h http.Header, uri string) (string, error) {
	p, _, _ := strings.Cut(uri, "?")
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, _ := strings.Cut(strings.TrimSpace(link), ";")
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			next := false
			for _, param := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
				next = next || strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next"
			}
			if !next {
				continue
			}
			target = target[1 : len(target)-1]
			u, err := url.Parse(target)
			if err != nil || u.Path != p || u.Host != "" {
				return "", fmt.Errorf("the answer to %s names as its next page another list: %q", uri, target)
			}
			if after := u.Query().Get("after"); after <= pageAfter(uri) {
				return "", fmt.Errorf("the answer to %s names as its next page one that does not follow it: %q", uri, target)
			}
			return target, nil
		}
	}
	return "", nil
}

// pageAfter is the after parameter of a list's uri.
func pageAfter(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return u.Query().Get("after")
}

type adminRequestFunc func(f adminFlags, args []string) (method, uri string, body any, err error)

// adminCommand builds a subcommand that calls the admin API and prints
// its JSON answer.
func adminCommand(use, short string, setup func(*cobra.Command), build adminRequestFunc) *cobra.Command {
	// errors (arguments, flags, the request) are printed by cobra, "Error: …"
	// no arguments unless setup says otherwise: cobra would take any and
	// ignore them (`ca legacy` showing the modern CA)
	c := &cobra.Command{Use: use, Short: short, SilenceUsage: true, Args: cobra.NoArgs}
	c.Flags().String("address", "", "address of the administration API listener: host:port, unix//path or http://host:port (if --config is not used)")
	c.Flags().StringP("config", "c", "", "configuration file (if --address is not used)")
	c.Flags().StringP("adapter", "a", "", "name of config adapter to apply (if --config is used)")
	if setup != nil {
		setup(c)
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		method, uri, body, err := build(adminFlags{cmd: cmd}, args)
		if err != nil {
			return err
		}
		addr, _ := cmd.Flags().GetString("address")
		cfg, _ := cmd.Flags().GetString("config")
		adapter, _ := cmd.Flags().GetString("adapter")
		adminAddr, err := caddycmd.DetermineAdminAPIAddress(addr, nil, cfg, adapter)
		if err != nil {
			return fmt.Errorf("couldn't determine admin API address: %v", err)
		}
		if adminAddr, err = adminListenAddress(adminAddr); err != nil {
			return err
		}
		var rd io.Reader
		var header http.Header
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			rd = bytes.NewReader(b)
			// the admin API refuses (415) a body of another type; said here,
			// not left to AdminAPIRequest's default
			header = http.Header{"Content-Type": {"application/json"}}
		}
		asJSON, _ := cmd.Flags().GetBool("json") // false where not defined (cdrs)
		var pages [][]byte                       // with --json, printed once all are read
		for page := 0; ; page++ {
			resp, err := caddycmd.AdminAPIRequest(adminAddr, method, uri, header, rd)
			if err != nil {
				return err
			}
			if method == http.MethodGet && strings.HasPrefix(uri, "/enroll/cdrs") {
				// an export of any size, as it comes
				_, err := io.Copy(cmd.OutOrStdout(), resp.Body)
				resp.Body.Close()
				return err
			}
			out, err := readAdminAnswer(resp.Body, uri)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if asJSON {
				if !json.Valid(out) {
					return notJSON(uri, out)
				}
				pages = append(pages, out)
			} else if err := printAdminAnswer(cmd.OutOrStdout(), uri, out, page > 0); err != nil {
				return err
			}
			// lists come a page at a time: every page, or the one asked for
			next, err := nextPage(resp.Header, uri)
			if err != nil {
				return err
			}
			if next == "" {
				break
			}
			if n, _ := cmd.Flags().GetInt("limit"); n != 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "more requests follow: --after %s\n", pageAfter(next))
				break
			}
			uri = next
		}
		if asJSON {
			return printJSONAnswer(cmd.OutOrStdout(), uri, pages)
		}
		return nil
	}
	return c
}

// printJSONAnswer prints the answer of --json: one JSON document, indented
// as the admin API and `caddy list-modules --json` do (two spaces), ending
// in a newline. A list's pages are joined into one array, so that a script
// reads one document whatever the page size; nothing is printed until
// every page was read, so that a failure prints no part of the list.
func printJSONAnswer(w io.Writer, uri string, pages [][]byte) error {
	doc := pages[0]
	if len(pages) > 1 {
		all := []json.RawMessage{}
		for _, p := range pages {
			var items []json.RawMessage
			if err := json.Unmarshal(p, &items); err != nil {
				return fmt.Errorf("a page of the list %s is not a JSON array: not printed", uri)
			}
			all = append(all, items...)
		}
		var err error
		if doc, err = json.Marshal(all); err != nil {
			return fmt.Errorf("joining the pages of %s: %v", uri, err)
		}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(doc), "", "  "); err != nil {
		return notJSON(uri, doc)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// notJSON is the error of an answer that is not JSON.
func notJSON(uri string, body []byte) error {
	return fmt.Errorf("the answer to %s is not valid JSON (%d bytes; cut short?): not printed", uri, len(body))
}

// adminListenAddress is addr as AdminAPIRequest takes it: a network
// address, as the admin listen option has it (host:port, unix//path), or
// the http:// URL of the endpoint, which an operator copies from a browser
// or curl, as its host:port (AdminAPIRequest read it as a network named
// "http:"), port 80 when the URL gives none. An https:// URL is refused:
// the endpoint over TLS is remote administration, whose client
// certificate the commands do not present.
// So is a URL with more than a host (a path, a query, a user: the
// commands would drop it), without echoing its password, and a network
// address Caddy cannot parse (localhost:2019/config: "unknown network").
func adminListenAddress(addr string) (string, error) {
	scheme, _, ok := strings.Cut(addr, "://")
	if !ok {
		if why := notAdminNetworkAddress(addr); why != "" {
			return "", fmt.Errorf("--address %s: not a network address (%s); give host:port, unix//path or http://host:port, with no path", addr, why)
		}
		return addr, nil
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil: // its error repeats the address, a password too
		return "", errors.New("--address: not a URL; give host:port, unix//path or http://host:port")
	case strings.EqualFold(scheme, "https"):
		return "", fmt.Errorf("--address %s: the admin endpoint over https is remote administration, which these commands do not speak (its client certificate); give the local endpoint, host:port or unix//path", u.Redacted())
	case !strings.EqualFold(scheme, "http"):
		return "", fmt.Errorf("--address %s: give host:port, unix//path or http://host:port", u.Redacted())
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Host == "":
		return "", fmt.Errorf("--address %s: http://host:port, with no path, query or user", u.Redacted())
	case u.Port() == "": // the URL's port, 80 (as a host alone it was port 0)
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u.Host, nil
}

// notAdminNetworkAddress says why addr is not a network address the
// commands can reach the admin endpoint at (Caddy took
// "localhost:2019/config" for a network named "localhost:2019", and
// "localhost" for port 0), or "".
func notAdminNetworkAddress(addr string) string {
	na, err := caddy.ParseNetworkAddress(addr)
	switch {
	case err != nil:
		return err.Error()
	case na.IsUnixNetwork():
		return ""
	case na.IsFdNetwork(): // a config's admin listen may say so
		return "a file descriptor, which only the process it was given to can use"
	case na.Network != "tcp" && na.Network != "tcp4" && na.Network != "tcp6":
		return "unknown network " + strconv.Quote(na.Network)
	case na.StartPort == 0:
		return "no port"
	case na.PortRangeSize() > 1: // which the admin listen refuses too
		return "a port range"
	}
	return ""
}

// maxAdminAnswer bounds the answers the commands read whole (all but the
// CDR export, which is copied as it comes); tests lower it.
var maxAdminAnswer = 64 << 20

// readAdminAnswer reads an answer of the admin API whole. One larger than
// maxAdminAnswer is an error: printed cut, it would look complete.
func readAdminAnswer(r io.Reader, uri string) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(maxAdminAnswer)+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s: %v", uri, err)
	}
	if len(out) > maxAdminAnswer {
		return nil, fmt.Errorf("the answer to %s is larger than %d bytes: not printed", uri, maxAdminAnswer)
	}
	return out, nil
}

// printAdminAnswer prints lists as tables and everything else as JSON. An
// answer that is not JSON (cut short, or not the admin API's) is an
// error, not printed as if it were the answer. A list's later pages
// (more) continue its table without the heading.
func printAdminAnswer(w io.Writer, uri string, body []byte, more bool) error {
	if !json.Valid(body) {
		return notJSON(uri, body)
	}
	switch {
	case strings.HasPrefix(uri, "/enroll/pending"), strings.HasPrefix(uri, "/enroll/requests"):
		var reqs []RequestInfo
		if err := json.Unmarshal(body, &reqs); err == nil {
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			if !more {
				fmt.Fprintln(tw, "ID\tDEVICE\tPROFILE\tSTATE\tKNOWN\tUSER\tCLIENT\tCREATED")
			}
			for _, r := range reqs {
				state := r.State
				if r.Held && r.State == statePending {
					state += " (held: max_issued_per_device)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", r.ID, r.Device, r.Profile, state,
					r.KnownDevice, r.Username, r.ClientAddr, r.Created.Format("2006-01-02 15:04:05Z"))
			}
			return tw.Flush()
		}
	case strings.HasPrefix(uri, "/enroll/devices"):
		var devs []DeviceInfo
		if err := json.Unmarshal(body, &devs); err == nil {
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			if !more {
				fmt.Fprintln(tw, "DEVICE\tGROUP\tENABLED\tENROLLED\tCERTIFICATE\tNOT AFTER\tREVOKED")
			}
			for _, d := range devs {
				serial, notAfter, revoked := "-", "-", "-"
				if n := len(d.Certificates); n > 0 {
					c := d.Certificates[n-1]
					serial, notAfter, revoked = c.Serial, c.NotAfter.Format("2006-01-02"), fmt.Sprint(c.Revoked)
				}
				fmt.Fprintf(tw, "%s\t%q\t%v\t%v\t%s\t%s\t%s\n", d.Name, d.Group, d.Enabled, d.Enrolled, serial, notAfter, revoked)
			}
			return tw.Flush()
		}
	case strings.HasPrefix(uri, "/enroll/certificates/"):
		var c IssuedCertificate
		if err := json.Unmarshal(body, &c); err == nil && c.Text != "" {
			fmt.Fprintf(w, "device:  %s\nprofile: %s\nrevoked: %v\n%s\n%s", c.Device, c.Profile, c.Revoked, c.Text, c.Certificate)
			return nil
		}
	case uri == "/enroll/unlock":
		var ans unlockAnswer
		if err := json.Unmarshal(body, &ans); err == nil {
			for _, v := range []struct {
				what string
				had  *bool
			}{{"account", ans.Account}, {"address", ans.Address}} {
				switch {
				case v.had == nil:
				case *v.had:
					fmt.Fprintf(w, "%s: failed logins cleared\n", v.what)
				default:
					fmt.Fprintf(w, "%s: no failed logins to clear\n", v.what)
				}
			}
			if ans.Warning != "" {
				fmt.Fprintf(w, "warning: %s\n", ans.Warning)
			}
			return nil
		}
	case strings.HasPrefix(uri, "/enroll/ca"):
		var info CAInfo
		if err := json.Unmarshal(body, &info); err == nil && info.Certificate != "" {
			fmt.Fprintf(w, "profile:     %s\nsubject:     %s\nsha256:      %s\n", info.Profile, info.Subject, info.Fingerprint)
			if info.MD5Fingerprint != "" {
				fmt.Fprintf(w, "md5:         %s   (enroll -fprint)\n", info.MD5Fingerprint)
			}
			fmt.Fprintf(w, "not after:   %s\ncrypto item: %s\n%s", info.NotAfter, info.Crypto, info.Certificate)
			return nil
		}
	}
	_, err := w.Write(body)
	return err
}
