// Package configfile reads, checks, edits and writes the clearinghouse
// configuration file (Tables 7 and 8 of the seed patent): the server's
// license key, its cryptographic parameters, four feature flags, and the
// groups, devices and call routes of the IP-telephony devices it serves.
// It uses only the standard library.
//
// # The file
//
// Each line holds one item, or nothing (a blank line or a comment). The
// first word of an item is its keyword, in lower case:
//
//	license "key"                                  a software license key
//	crypto "parameters"                            the server's cryptographic parameters
//	enroll {enabled|disabled}                      device enrollment
//	routing {enabled|disabled}                     call routing
//	cdrs {enabled|disabled}                        collection of call detail records
//	ssl {enabled|disabled}                         force clearinghouse requests over SSL
//	group name                                     a group of devices
//	device name group {enabled|disabled} [enrolled] a device of a group
//	route group number device weight [device weight]...  a route for calls
//
// Words are separated by spaces and tabs. A word is either unquoted, any
// run of printable characters but quotes (seed 001 quotes only a name of
// more than one word: AT&T, Télécom and Carrier(UK) are words; a Unicode
// space such as U+00A0 is refused unquoted), or quoted
// between single quotes '...' or double quotes "...". There are no escapes:
// a quoted word runs to the next quote of the same kind, so it can hold the
// other quote character, spaces, tabs, '#' and any UTF-8 text; a value that
// holds both quote characters cannot be written. A pair of quotes ("") is
// the empty word: the default group, or the catch-all number. Quoting never
// changes the meaning of a word; only keywords and the words enabled,
// disabled and enrolled are conventionally left unquoted.
//
// A '#' that begins a word starts a comment, which runs to the end of the
// line; a '#' inside a word (x#y, '#x') belongs to the word. Lines end with
// LF or CR LF (a CR anywhere else is an error); the last line may lack its
// line end, and a UTF-8 byte order mark at the start of the file is
// ignored. Lines are at most Limits.MaxLineLen bytes (4096 by default, not
// counting the line end) and files at most Limits.MaxFileSize bytes (256 MiB
// by default; DefaultLimits is a variable). Control characters other than
// tab (including NUL, DEL and the C1 controls), invalid UTF-8 and
// unterminated quotes are errors wherever they appear, comments included.
// An item cannot continue on the next line.
//
// # Meaning
//
// license, crypto, enroll, routing, cdrs and ssl may appear several times:
// the last occurrence is in force. Every license line is kept, in order, in
// File.Licenses (the license history of the seed); License returns the
// last. An absent crypto item means the server must generate parameters
// (and enrolled devices must enroll again); an absent flag is disabled.
//
// license "" is valid and kept as an empty key (License returns ""): like
// an absent or invalid key, it leaves the server a trial version. crypto
// "" counts as an absent crypto item: HasCrypto is false and Crypto "", so
// the server generates new parameters and clears the enrolled marks, and
// SetCrypto writes the new parameters into that line (the last crypto
// line, which is in force) rather than adding one. The edit methods
// AddLicense and SetCrypto refuse empty values.
//
// group, device and route items accumulate. Two groups with the same name,
// two devices with the same name, or two routes with the same group and
// called number are errors. Device names are compared by DeviceKey: DNS
// names ignore case and one trailing dot, and IP addresses are compared as
// addresses, so a.example, A.EXAMPLE and a.example. are one device, as are
// 192.0.2.10, [192.0.2.10] and ::ffff:192.0.2.10, or 2001:db8::1 and
// 2001:DB8:0::1. Every group a device or route names, and every device a
// route names, must be defined somewhere in the file (before or after its
// use); a route may name a device in any spelling with the same key, and
// Target.Device is that device. The default group "" must be defined with
// group "" as Table 7 does. Device names must not be empty, and a name
// whose DeviceKey is empty (only spaces, or ".") counts as empty, so a
// route's device "" never names a device. File.Device and the edit
// methods find a device by any spelling of its name too.
//
// A route applies to calls from the devices of its group to called numbers
// matching its number; its devices may belong to any group. It needs at
// least one device/weight pair, and may not name a device twice. Weights
// are decimal integers from 0 to 1,000,000 (MaxWeight). Calls are shared
// among the route's usable devices in proportion to their weights; devices
// of weight 0 are standbys, offered after the usable positive-weight ones,
// in file order, while an answer has places left.
//
// # Called numbers
//
// A route's number is a pattern. Its digits 0-9, '*' and '#' are
// significant; a leading '+' and the separators ' ', '-' and '.' are not:
// the routing code receives E.164 digits without '+'. So '+1 404...' is
// the prefix 1404, '+33-6...' and '+33 6...' are both the prefix 336 (and
// collide in one group), and '+1...' and '1...' collide too. Any other
// character is an error, as is a '+' after the first digit, ".." anywhere
// but in the final "..." (also with spaces or '-' between the dots, as in
// '1. .2', and a '.' before the final "...", as in '1....' or '1. ...'),
// or more than 32 digits (MaxNumberDigits).
//
//   - A pattern that ends in "..." is a prefix: it matches every number that
//     starts with its digits (Route.Exact false, Route.Prefix the digits).
//   - A pattern without "..." is an exact match: it matches only the number
//     with exactly its digits (Route.Exact true). It must have a digit.
//   - "" (and "...", "+...") is the catch-all: it matches every number
//     (Route.Prefix "", Route.Exact false).
//
// An exact pattern and a prefix pattern with the same digits do not collide.
// NormalizeNumber applies the same rules to a dialed number.
//
// # Errors
//
// Parse reports every error of a file, in line order, as an ErrorList (up
// to Limits.MaxErrors, 100 by default, then one "too many errors"). A cut
// list holds the first errors by line, whichever check found them: an
// undefined name or a duplicate route on an early line comes before the
// syntax errors of later lines, and a name defined after the last line
// reported is not undefined. Each
// *Error carries the file name, the line and the offending word, and reads
//
//	clearinghouse.conf:12: route: undefined device (near "device9.isp.com")
//
// The word is quoted as strconv.Quote does, and cut to 37 characters and
// "..." when longer than 40. Errors about the whole file have no line:
// "clearinghouse.conf: file too large (300000000 bytes, max 268435456)".
// Edits that cannot be made return an *Error in the same format.
//
// # Editing and writing
//
// The file is the operator's: written by hand, with comments, and changed
// by the server too (a device marked enrolled, an approved device added,
// the crypto item filled in when the CA is made). So an edit touches its
// own lines and nothing else, and a write never leaves the file half
// written.
//
// The edit methods (SetEnrolled, SetEnabled, AddDevice, RemoveDevice,
// SetCrypto, AddLicense, SetFlag, ClearEnrolled) change the File, and
// Bytes renders the source as parsed with only the affected lines changed:
// comments, blank lines, order, spacing and quoting of every other line
// stay byte for byte, and an edited line keeps its indentation, its
// quoting and its comment. A new device line goes after the last device
// line (or the last group line), a new license line after the last license
// line, a missing crypto or flag line after the license lines (or before
// the first item). New lines use the file's line ending (that of its first
// line). Changes made directly to the exported fields are written back only
// for the flags, Crypto, a device's Enabled and Enrolled, and licenses
// appended to Licenses; Format writes everything. Line numbers stay those
// of the parse (0 for added devices).
//
// Format writes the canonical form of a File: licenses, crypto, the four
// flags, groups, devices and routes, with single spaces, minimal quoting
// and no comments. A route names a device as its device line does, or by
// a shorter spelling of the same device (same DeviceKey) that a route of
// the source used, so that no line of Format is longer than the line it
// comes from; a line that quoting would make longer than the line limit
// is written with its words unquoted where they can be (license and
// crypto values included), as its source line had them. Parse(Format(f))
// is Equal to f.
//
// WriteFileAtomic (and Save, which writes Bytes) replaces a file safely: the
// new content goes to a temporary file in the same directory, which takes
// the mode (and, when permitted, the owner) of the file it replaces, or
// SaveOptions.Mode (0640 by default) for a new file, and is synced; the
// previous version becomes NAME.~1~, older ones shift to NAME.~2~ ...
// NAME.~N~ (SaveOptions.Backups, 5 by default, negative for none), where
// the current file is hard-linked (or copied) rather than moved, so NAME
// exists at every moment; then the temporary file is renamed onto NAME and
// the directory is synced. Callers serialize concurrent writers;
// SaveOptions.BeforeReplace lets them check, just before the rename, that
// no writer they cannot serialize with (an editor) replaced NAME.
//
// # Size
//
// Parse keeps one copy of the source; names, numbers and most prefixes are
// substrings of it. Routes refer to devices by index (Target.Device) and
// their targets and normalized prefixes live in shared arenas, so a parsed
// million-route file costs under 300 bytes per route, source included.
package configfile
