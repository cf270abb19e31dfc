// Command floodprobe floods a local clearinghouse's enrollment and measures
// what the devices that behave see meanwhile. It answers "does a flood of
// password guesses (or of junk) starve getcacert, a device already logged
// in, the server's memory, or its log?", the questions behind the hash
// bound, the login cache and the log throttle of caddyenroll.
//
// It talks to loopback only: -dial, -metrics' host and the source
// addresses must be literal loopback addresses (127.0.0.0/8, ::1), or it
// refuses to start. -url gives only the path, the Host header and the TLS
// server name; the connection goes to -dial. The site's certificate is
// verified against -root (Caddy's local_certs root, in its storage at
// pki/authorities/local/root.crt). run.sh in this directory starts a Caddy
// for it and cleans up; see its header.
//
// What it does, in order:
//
//  1. waits (-wait) until -root exists and getcacert answers status 0;
//  2. logs in -user twice (operation request): the first costs a password
//     hash, the second is served from the server's login cache;
//  3. the login flood: -c workers post request logins with random
//     usernames and passwords for -d, from -addrs source addresses
//     counting up from -src; meanwhile one client asks getcacert every
//     20 ms and another logs -user in (retrieve, cached) every 100 ms,
//     both from -measure-src; optionally -user3 tries an uncached login
//     every 200 ms and -reload-at forces a config reload;
//  4. the junk flood, the same with -junk workers posting an unknown
//     operation for -junk-d (skipped when -junk is 0);
//  5. after the floods, logs -user2 in (uncached) until it succeeds or
//     -after passes, then watches the idle server for 5 s.
//
// How to read the output. Each kind of request has a line
//
//	NAME: answered=N (R/s) p50=… p99=… max=… statuses={S:N …} errors=E (first: …)
//
// with the answers' rate over the series' span (the measuring clients
// stop at the flood's end; the flood's workers wait for their last
// answers, which a slow bcrypt can make seconds late), the latency
// quantiles of the answered requests; statuses are the
// enrollment protocol's (wire.Status*: 0 ok, 3 bad credentials, 10 rate
// limited or shed, 15 unsupported operation); errors are requests with no
// enrollment answer (connection failure, timeout, HTTP error, undecodable
// body), counted apart and never in the quantiles. A healthy server keeps
// getcacert and the cached login at status 0 with no errors and
// millisecond latencies while the flood gets 3 and 10. Then per flood:
// the server's CPU (percent of one core, average and per second; needs
// -pid), its RSS before, at most and at the end (-pid), its log's growth
// in MB/min (-log), and the change of the clearinghouse's counters at
// /metrics (-metrics; empty skips). The figures are of a shared machine
// unless it is not: the flood competes with the server for the same cores.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// options are the command line's, checked.
type options struct {
	url, root    string
	dial         netip.AddrPort
	metrics      *url.URL // nil: no scrape, no reload
	sources      []netip.Addr
	measureSrc   netip.Addr
	pid          int
	logFile      string
	workers      int
	dur          time.Duration
	junk         int
	junkDur      time.Duration
	wait, after  time.Duration
	user, pass   string
	user2, pass2 string
	user3, pass3 string
	reloadAt     time.Duration
}

func parseFlags(fs *flag.FlagSet, args []string) (*options, error) {
	var (
		o                           options
		dial, metrics, src, measure string
		addrs                       int
	)
	fs.StringVar(&o.url, "url", "https://localhost:18443/", "enrollment URL: path, Host and TLS server name (the connection goes to -dial)")
	fs.StringVar(&dial, "dial", "127.0.0.1:18443", "address dialed (loopback only)")
	fs.StringVar(&o.root, "root", "", "PEM root the site's certificate chains to (Caddy storage: pki/authorities/local/root.crt); required for https")
	fs.StringVar(&metrics, "metrics", "http://127.0.0.1:12019/metrics", "Caddy admin metrics URL (loopback only; empty: no metrics, no -reload-at)")
	fs.IntVar(&o.pid, "pid", 0, "server PID, for CPU and RSS from /proc (0: not measured)")
	fs.StringVar(&o.logFile, "log", "", "server log file, for its growth (empty: not measured)")
	fs.IntVar(&o.workers, "c", 300, "login flood workers")
	fs.DurationVar(&o.dur, "d", 30*time.Second, "login flood duration")
	fs.StringVar(&src, "src", "127.0.0.2", "first flood source address (loopback only)")
	fs.IntVar(&addrs, "addrs", 199, "flood source addresses, counting up from -src")
	fs.StringVar(&measure, "measure-src", "127.0.0.1", "source address of the measuring clients (loopback only, not a flood source)")
	fs.IntVar(&o.junk, "junk", 0, "junk flood workers, posting an unknown operation (0: no junk flood)")
	fs.DurationVar(&o.junkDur, "junk-d", 10*time.Second, "junk flood duration")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the server to answer getcacert")
	fs.DurationVar(&o.after, "after", 150*time.Second, "how long the post-flood uncached login (-user2) may take")
	fs.StringVar(&o.user, "user", "demo", "account logged in before the floods, then cached")
	fs.StringVar(&o.pass, "pass", "demo-password", "-user's password")
	fs.StringVar(&o.user2, "user2", "demo2", "account logged in after the floods, uncached (empty: skipped)")
	fs.StringVar(&o.pass2, "pass2", "demo2-password", "-user2's password")
	fs.StringVar(&o.user3, "user3", "", "account tried uncached during the login flood until it succeeds (empty: none)")
	fs.StringVar(&o.pass3, "pass3", "demo3-password", "-user3's password")
	fs.DurationVar(&o.reloadAt, "reload-at", 0, "force a config reload through the admin API this long into the login flood (0: none)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: floodprobe [flags]\n\nFloods a loopback clearinghouse's enrollment with random logins (and\nunknown operations), measuring getcacert, a cached login, CPU, RSS, log\ngrowth and metrics meanwhile. See `go doc ./internal/floodprobe`.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.dial, err = loopbackHostPort("dial", dial); err != nil {
		return nil, err
	}
	if metrics != "" {
		if o.metrics, err = loopbackURL("metrics", metrics); err != nil {
			return nil, err
		}
	} else if o.reloadAt > 0 {
		return nil, fmt.Errorf("-reload-at needs -metrics (the admin endpoint)")
	}
	if o.sources, err = loopbackSources("src", src, addrs); err != nil {
		return nil, err
	}
	if err := sameFamily(o.sources, o.dial); err != nil {
		return nil, err
	}
	if o.measureSrc, err = loopbackAddr("measure-src", measure); err != nil {
		return nil, err
	}
	if err := sameFamily([]netip.Addr{o.measureSrc}, o.dial); err != nil {
		return nil, err
	}
	for _, a := range o.sources {
		if a == o.measureSrc {
			return nil, fmt.Errorf("-measure-src %s is among the flood's sources (-src %s, -addrs %d): the server's per-address limits would hit the measurements", a, src, addrs)
		}
	}
	u, err := url.Parse(o.url)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch {
	case u.Scheme == "https" && o.root == "":
		return nil, fmt.Errorf("-root is required for an https -url (the site's root certificate)")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("-url: scheme must be https or http, not %q", u.Scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("-url: no host")
	}
	if o.workers < 1 || o.dur <= 0 {
		return nil, fmt.Errorf("-c and -d must be positive")
	}
	if o.junk < 0 || (o.junk > 0 && o.junkDur <= 0) {
		return nil, fmt.Errorf("-junk must be 0 or more, and -junk-d positive with it")
	}
	return &o, nil
}

func main() {
	o, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floodprobe:", err)
		os.Exit(1)
	}
}
