package configfile

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is one problem found in a configuration file, or one refused edit.
//
// Its text is
//
//	FILE:LINE: MSG (near "TOKEN")
//
// where TOKEN is the offending word, quoted with [strconv.Quote] and cut to
// its first 37 characters plus "..." when longer than 40 characters. Errors
// that concern the whole file (Line 0, such as "file too large") print as
// "FILE: MSG", followed by (near "TOKEN") only when Token is not empty.
type Error struct {
	File  string // file name, as given to Parse or ParseFile
	Line  int    // 1-based line number; 0 when the error concerns the whole file
	Token string // the offending word, unquoted and unshortened
	Msg   string // what is wrong, without file, line or token
}

// maxTokenRunes is the longest token printed whole in an error message.
const maxTokenRunes = 40

// QuoteToken renders a token as Error.Error prints it: strconv.Quote of the
// token, shortened to its first 37 characters and "..." when it has more
// than 40 characters.
func QuoteToken(tok string) string {
	if utf8.RuneCountInString(tok) > maxTokenRunes {
		n, i := 0, 0
		for i < len(tok) && n < maxTokenRunes-3 {
			_, sz := utf8.DecodeRuneInString(tok[i:])
			i += sz
			n++
		}
		tok = tok[:i] + "..."
	}
	return strconv.Quote(tok)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line > 0 || e.Token != "" {
		b.WriteString(" (near ")
		b.WriteString(QuoteToken(e.Token))
		b.WriteByte(')')
	}
	return b.String()
}

// ErrorList is every error found in one file, in line order. Parse returns
// an ErrorList (never an empty one) when the file is not valid.
type ErrorList []*Error

// Error joins the messages of the list with newlines.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// MsgTooManyErrors is the Msg of the Error that ends a list cut at
// Limits.MaxErrors; its line is where the next error was found.
const MsgTooManyErrors = "too many errors"

// Truncated reports whether the list was cut at Limits.MaxErrors: its last
// Error then says "too many errors" and the others are the first errors of
// the file.
func (l ErrorList) Truncated() bool {
	return len(l) > 0 && l[len(l)-1].Msg == MsgTooManyErrors
}

// Unwrap gives errors.Is and errors.As access to each *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Limits bound what Parse accepts. A zero field takes its value from
// DefaultLimits.
type Limits struct {
	MaxFileSize int64 // bytes; larger files are refused with one error
	MaxLineLen  int   // bytes per line, not counting the CR LF or LF
	MaxErrors   int   // errors reported (the first by line), then one "too many errors"
}

// DefaultLimits are the limits of Parse and ParseFile. Change them (before
// parsing starts) to accept larger files.
var DefaultLimits = Limits{
	MaxFileSize: 256 << 20,
	MaxLineLen:  4096,
	MaxErrors:   100,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxFileSize > 0 {
		d.MaxFileSize = l.MaxFileSize
	}
	if l.MaxLineLen > 0 {
		d.MaxLineLen = l.MaxLineLen
	}
	if l.MaxErrors > 0 {
		d.MaxErrors = l.MaxErrors
	}
	if d.MaxFileSize <= 0 {
		d.MaxFileSize = 256 << 20
	}
	if d.MaxLineLen <= 0 {
		d.MaxLineLen = 4096
	}
	if d.MaxErrors <= 0 {
		d.MaxErrors = 100
	}
	return d
}
