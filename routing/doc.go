// Package routing is the route table of call authorization: given the
// device that asks to place a call (the source) and the called number, it
// finds the route of the clearinghouse configuration file (configfile) that
// applies and chooses the destination devices to offer, each with the
// signalling address OSP puts in DestinationSignalAddress. It uses only the
// standard library, configfile and osp (whose address rules it applies);
// it does not import Caddy.
//
// Build turns a parsed *configfile.File into a Table, which is immutable:
// any number of goroutines may use it at once. A Router holds the Table in
// force in an atomic pointer; when the configuration changes, build a new
// Table and Swap it in (Rebuild does both). Lookups never wait for a
// rebuild, and a lookup that started on the old Table finishes on it.
//
// Update builds the Table of a new version from the previous Table: when
// only devices' enabled and enrolled flags changed (a server marking a
// device enrolled), it shares the previous Table's route index and device
// names and copies only the flags (15 ms instead of 0.27 s for 100,000
// devices and 200,000 routes); when the devices are the same but routes
// changed, it indexes the routes alone. Table.SameDevices then tells that
// indexes of the devices by name or address made for the old Table serve
// the new one.
//
// # Which route applies
//
// Called numbers are compared as digit strings. In a dialed number and in a
// route's pattern alike, the digits 0-9, '*' and '#' are significant; a
// leading '+' and the separators ' ', '-' and '.' are not (the rules of
// configfile.NormalizeNumber). So "+1 404-872.4799" is the number
// 14048724799, and it matches the patterns '+1 404...', '1404...' and
// '+1-404-872-4799'. A dialed number must normalize to an exact number (at
// least one digit, at most 32, no "..."): anything else, including the
// empty string, is ErrInvalidNumber.
//
// A route's pattern is one of
//
//   - a prefix ('+1 404...'): matches every number that starts with its
//     digits, the number itself included;
//   - an exact number ('+1 404 872 4799', no "..."): matches only that
//     number;
//   - the catch-all "" (or "..."): matches every number; it is the prefix of
//     length 0.
//
// The route for a call from source S to number N is found as follows:
//
//  1. S's group G is the group of the device line of S (ErrUnknownSource if
//     S is not a device of the file). S is the name as the device line
//     writes it: another spelling of it ("GW1.Example.") is unknown here;
//     configfile.File.Device maps any spelling to the file's.
//  2. Among the routes of G: an exact route equal to N wins; otherwise the
//     prefix route with the longest prefix of N wins (the catch-all, if G
//     has one, when nothing longer matches). An exact match therefore beats
//     every prefix match, including a prefix with the same digits
//     ('1678' beats '1678...' for 1678).
//  3. If no route of G matches (G has no routes, or no catch-all and no
//     prefix or exact route that fits N), the routes of the default group
//     "" are searched the same way. Nothing else is ever consulted: a route
//     of G always beats a route of "", however long, and a group with a
//     catch-all never falls back.
//  4. No route at all: ErrNoRoute.
//
// Only the one route found is used: if none of its devices can take the
// call, the answer is ErrNoDestination; shorter prefixes and the default
// group are not tried. (A route's weight-0 devices are its fallbacks.)
//
// Route does not judge the source: whether S may place calls at all (its
// certificate, its enabled and enrolled flags) is the caller's decision;
// Table.Device gives the flags.
//
// # Which devices are offered
//
// Of the route's devices, in the order of the route line, a device is a
// candidate when it is enabled and enrolled in the file (the flags are the
// truth), is not S itself, and the caller's eligible hook (if not nil)
// returns true for it; the hook is how the caller excludes devices whose
// certificate is revoked. Candidates of positive weight come first, in
// weighted random order: each place is drawn among the candidates not yet
// placed, each with probability proportional to its weight. Candidates of
// weight 0 follow as fallbacks, in the order of the route line. At most
// maxDest destinations are returned (the request's maximum), and never more
// than Options.MaxDestinations (10 by default); maxDest ≤ 0 means that cap.
//
// The hook is called at most once per device and call; for weight-0
// devices only while places remain.
//
// With Table 7 of the seed, a call from device1.itsp.com (group ACME ITSP)
// to 1678 matches 'ACME ITSP' '+1...' (device1 60, device2 25, device3 15,
// device4.carrier.com 0): device1 is the source and device3 is disabled, so
// the answer is device2.itsp.com then device4.carrier.com.
//
// # Signalling addresses
//
// Each Destination carries the device's signalling address in the forms
// OSP devices take: "[ip]:port" for an IP address (in its canonical form,
// an IPv4-mapped address as IPv4: "::ffff:192.0.2.10" and "192.0.2.10."
// are "[192.0.2.10]"), "host:port" for a name.
// By default the host is the device's name (its DNS name) and the port
// Options.DefaultPort (5060). Options.SignalAddress gives an explicit
// address per device name, written host, host:port, [host], [host]:port
// or as a bare IPv6 address. Its host must be one OSP can send: an IP
// address without a zone, or a host name (letters, digits, '-' and '_' in
// dot-separated labels). It is stored in the form above, with the default
// port when none is given. Entries for names that are not devices of the
// file are ignored (the file may change under a fixed server
// configuration).
//
// # Protocols and devices that do not do OSP
//
// Each Destination also carries its device's destination protocol
// (Options.Protocol: one of the OSP Toolkit's names, osp.Protocols, such as
// "h323-Q931" or "iax"; "" when none is given, which answers write "sip")
// and whether the device is not an OSP device (Options.NonOSP: answers
// then tell the source not to send it a token). Build refuses a protocol
// the toolkit does not know; entries for names that are not devices of
// the file are ignored, as above.
//
// # Randomness
//
// Route draws from the *rand.Rand it is given (math/rand/v2); a *rand.Rand
// is not safe for concurrent use, so a server keeps one per goroutine, and
// tests pass one with a fixed seed. A nil *rand.Rand uses math/rand/v2's
// top-level functions, which are safe for concurrent use.
//
// # Size and speed
//
// A pattern is packed into a 128-bit key, 4 bits per digit (a digit's code
// is never 0, so the zero padding sorts a prefix before its extensions and
// the integer order of keys is the string order of the patterns). A prefix
// route then covers an interval of keys, an exact route the interval of its
// number alone; the intervals are nested or disjoint, and the rule above
// picks the innermost one holding the number. Each group's index is the
// sorted list of the boundaries of that partition of the key space, each
// carrying its route's payload (targets, pattern, line): a lookup is a
// search for the last boundary not above the number, with no further
// memory access. The search is narrowed by a bucket table fitted to the
// group's keys (about four boundaries per bucket, two bytes per bucket, so
// that it stays in cache), then counts the bucket's boundaries without
// branches, so that their cache lines load together. A lookup therefore
// costs about one memory latency; a boundary is 24 bytes, a route about
// two boundaries, and a route with three devices about 85 bytes in all
// (see BenchmarkBuild1M).
package routing
