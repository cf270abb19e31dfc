package configfile

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bareChar tells which ASCII bytes may appear in an unquoted word: every
// printable one but the quotes. A word is one word whatever its
// characters (seed 001: only a name of more than one word is quoted);
// non-ASCII letters are allowed too (bareRuneAt).
var bareChar = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = c != '\'' && c != '"'
	}
	return t
}()

// plainChar tells which bytes the writers leave unquoted: A-Z a-z 0-9 and
// . _ : @ + * # / - only, the unquoted words of earlier versions of this
// package (an instance of one sharing the file reads what this one
// writes). Other one-word values are written quoted.
var plainChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._:@+*#/-" {
		t[c] = true
	}
	return t
}()

// bareRuneAt returns the size of the non-ASCII character that starts s if
// it may appear in an unquoted word (valid UTF-8, not a control or space
// character), else 0.
func bareRuneAt(s string) int {
	r, size := utf8.DecodeRuneInString(s)
	if (r == utf8.RuneError && size == 1) || r < 0xa0 || unicode.IsSpace(r) {
		return 0
	}
	return size
}

// badByte returns the index of the first byte of line that is not allowed
// anywhere in a file (a control character other than tab, DEL, a C1
// control, or invalid UTF-8), or -1. utf8Bad tells which of the two it is.
func badByte(line string) (i int, utf8Bad bool) {
	for i < len(line) {
		c := line[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return i, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(line[i:])
		if r == utf8.RuneError && size == 1 {
			return i, true
		}
		if r < 0xa0 { // C1 controls U+0080..U+009F
			return i, false
		}
		i += size
	}
	return -1, false
}

// wordAround returns the whitespace-delimited word of line containing i.
func wordAround(line string, i int) string {
	a, b := i, i
	for a > 0 && line[a-1] != ' ' && line[a-1] != '\t' {
		a--
	}
	for b < len(line) && line[b] != ' ' && line[b] != '\t' {
		b++
	}
	return line[a:b]
}

// rawTok is a token of a line: val is its value (without quotes), src[start:end]
// its text as written (with quotes).
type rawTok struct {
	val        string
	start, end int
}

// lexLine splits the line src[start:end] into tokens, appended to
// toks[:0]. It also checks every byte of the line: on the first problem
// (a control character, invalid UTF-8, a character not allowed in an
// unquoted word, a bad quote) it returns the message and offending text.
func lexLine(src string, start, end int, toks []rawTok) ([]rawTok, string, string) {
	toks = toks[:0]
	i := start
	for i < end {
		c := src[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '#' {
			// a comment runs to the end of the line
			if k, _ := badByte(src[i:end]); k >= 0 {
				msg, tok := badByteError(src, start, end, i+k)
				return toks, msg, tok
			}
			break
		}
		if c == '\'' || c == '"' {
			j := strings.IndexByte(src[i+1:end], c)
			cl := i + 1 + j
			if j < 0 {
				cl = end
			}
			if k, _ := badByte(src[i+1 : cl]); k >= 0 {
				msg, tok := badByteError(src, start, end, i+1+k)
				return toks, msg, tok
			}
			if j < 0 {
				return toks, "unterminated quoted string", src[i:end]
			}
			if cl+1 < end && src[cl+1] != ' ' && src[cl+1] != '\t' {
				// a byte allowed nowhere is the problem, as after a bare word
				if c := src[cl+1]; c < 0x20 || c == 0x7f || (c >= utf8.RuneSelf && !isGraphicAt(src[cl+1:end])) {
					msg, tok := badByteError(src, start, end, cl+1)
					return toks, msg, tok
				}
				k := cl + 1
				for k < end && src[k] != ' ' && src[k] != '\t' {
					k++
				}
				return toks, "missing space after closing quote", src[i:k]
			}
			toks = append(toks, rawTok{val: src[i+1 : cl], start: i, end: cl + 1})
			i = cl + 1
			continue
		}
		j := i
		for j < end {
			if c := src[j]; c < utf8.RuneSelf && bareChar[c] {
				j++
			} else if n := bareRuneAt(src[j:end]); c >= utf8.RuneSelf && n > 0 {
				j += n
			} else {
				break
			}
		}
		if j < end && src[j] != ' ' && src[j] != '\t' {
			if c := src[j]; c < 0x20 || c == 0x7f || (c >= utf8.RuneSelf && !isGraphicAt(src[j:end])) {
				msg, tok := badByteError(src, start, end, j)
				return toks, msg, tok
			}
			k := j
			for k < end && src[k] != ' ' && src[k] != '\t' {
				k++
			}
			r, _ := utf8.DecodeRuneInString(src[j:end])
			return toks, "character " + quoteRune(r) + " not allowed in an unquoted word (quote the word)", src[i:k]
		}
		toks = append(toks, rawTok{val: src[i:j], start: i, end: j})
		i = j
	}
	return toks, "", ""
}

// isGraphicAt reports whether s starts with a valid UTF-8 sequence that is
// not a C1 control character.
func isGraphicAt(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return !(r == utf8.RuneError && size == 1) && r >= 0xa0
}

// badByteError describes the bad byte at src[i] of the line src[start:end].
func badByteError(src string, start, end, i int) (msg, tok string) {
	c := src[i]
	switch {
	case c == '\r':
		return "carriage return not followed by line feed", src[i : i+1]
	case c < utf8.RuneSelf:
		return "control character not allowed", src[i : i+1]
	}
	if r, size := utf8.DecodeRuneInString(src[i:end]); r == utf8.RuneError && size == 1 {
		return "invalid UTF-8", clip(wordAround(src[start:end], i-start))
	} else {
		return "control character not allowed", src[i : i+size]
	}
}

func quoteRune(r rune) string {
	switch r {
	case '\'':
		return `"'"`
	case '"':
		return `'"'`
	}
	if unicode.IsSpace(r) || !unicode.IsGraphic(r) {
		return fmt.Sprintf("U+%04X", r)
	}
	return "'" + string(r) + "'"
}

// isBare reports whether the writers leave s unquoted (plainChar).
func isBare(s string) bool {
	if s == "" || s[0] == '#' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !plainChar[s[i]] {
			return false
		}
	}
	return true
}

// quoteValue renders a name, number or value as the writers do: bare when
// possible, else in single quotes, else in double quotes. It fails for a
// value holding both quote characters, a control character (other than
// tab), or invalid UTF-8.
func quoteValue(s string) (string, bool) {
	if msg := checkValue(s); msg != "" {
		return "", false
	}
	return quoteValid(s), true
}

// quotedLen is len(quoteValid(s)).
func quotedLen(s string) int {
	if isBare(s) {
		return len(s)
	}
	return len(s) + 2
}

// quoteValid quotes a value that passed checkValue.
func quoteValid(s string) string {
	switch {
	case s == "":
		return `""`
	case isBare(s):
		return s
	case strings.IndexByte(s, '\'') < 0:
		return "'" + s + "'"
	default:
		return `"` + s + `"`
	}
}

// quoteIn renders a license or crypto value, which seed 001 writes
// "enclosed in double quotation marks": between the quote q (double or
// single), or the other quote when v holds q. v holds at most one of them
// (checkValue).
func quoteIn(v string, q byte) string {
	if strings.IndexByte(v, q) >= 0 {
		q = '"' + '\'' - q
	}
	return string(q) + v + string(q)
}

// appendQuoted appends quoteValid(s) to b.
func appendQuoted(b []byte, s string) []byte {
	switch {
	case s == "":
		return append(b, '"', '"')
	case isBare(s):
		return append(b, s...)
	case strings.IndexByte(s, '\'') < 0:
		b = append(b, '\'')
		b = append(b, s...)
		return append(b, '\'')
	default:
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
}

// checkValue returns why s cannot be written in a file, or "".
func checkValue(s string) string {
	if i, bad := badByte(s); i >= 0 {
		if bad {
			return "invalid UTF-8"
		}
		return "control character not allowed"
	}
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') >= 0 {
		return "value holds both quote characters and cannot be written"
	}
	return ""
}
