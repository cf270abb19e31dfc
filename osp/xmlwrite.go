package osp

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// xmlDecl is the declaration the toolkit writes and reads: an unsigned token
// must start with "<?xml" (OSPPTransactionValidateAuthorisation compares the
// first five bytes), and so must the content of a signed one.
const xmlDecl = `<?xml version="1.0"?>`

// timeLayout is the only time format the toolkit reads: OSPPOSTimeStringToCal
// (src/ospostime.c) takes the digits at fixed offsets of
// "YYYY-MM-DDThh:mm:ssZ", so no fraction, no offset and no leading space.
const timeLayout = "2006-01-02T15:04:05Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// xmlWriter builds a document the way the toolkit's parser wants it.
// Element values have no surrounding whitespace: the toolkit keeps every
// byte between the tags. (TransactionId is read digit by digit, so a
// leading newline corrupts it; times are read at fixed offsets; Unit is
// compared with "s".) In pretty mode a newline follows every tag, as in
// authorisation-response-accepted.xml.
//
// Values are escaped. The toolkit decodes the predefined entities and
// character references in element values (OSPPXMLUnescape,
// src/ospxmlutil.c), but not in attribute values. Most values this package
// writes (numbers, addresses, base64, times) need no escaping anyway.
type xmlWriter struct {
	buf    []byte
	pretty bool
	err    error
}

func newWriter(pretty bool, sizeHint int) *xmlWriter {
	w := &xmlWriter{buf: make([]byte, 0, sizeHint), pretty: pretty}
	w.buf = append(w.buf, xmlDecl...)
	w.nl()
	return w
}

func (w *xmlWriter) nl() {
	if w.pretty {
		w.buf = append(w.buf, '\n')
	}
}

// attrs are name/value pairs; an empty value drops the attribute.
func (w *xmlWriter) open(name string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *xmlWriter) attrs(attrs []string) {
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		w.buf = append(w.buf, ' ')
		w.buf = append(w.buf, attrs[i]...)
		w.buf = append(w.buf, '=', '"')
		w.escape(attrs[i+1], true)
		w.buf = append(w.buf, '"')
	}
}

func (w *xmlWriter) close(name string) {
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *xmlWriter) empty(name string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '/', '>')
	w.nl()
}

// leaf writes <name attrs>value</name>.
func (w *xmlWriter) leaf(name, value string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '>')
	w.escape(value, false)
	w.leafEnd(name)
}

// leafStart and leafEnd write <name> and </name> around a value the
// caller appends to w.buf: a number or a time, which needs no escaping.
func (w *xmlWriter) leafStart(name string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
}

func (w *xmlWriter) leafEnd(name string) {
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *xmlWriter) leafUint(name string, v uint64) {
	w.leafStart(name)
	w.buf = strconv.AppendUint(w.buf, v, 10)
	w.leafEnd(name)
}

func (w *xmlWriter) leafInt(name string, v int64) {
	w.leafStart(name)
	w.buf = strconv.AppendInt(w.buf, v, 10)
	w.leafEnd(name)
}

// leafTime writes t, unless it is zero.
func (w *xmlWriter) leafTime(name string, t time.Time) {
	if !t.IsZero() {
		w.leafTimeAlways(name, t)
	}
}

// leafTimeAlways writes t as formatTime does, even the zero time.
func (w *xmlWriter) leafTimeAlways(name string, t time.Time) {
	w.leafStart(name)
	w.buf = t.UTC().AppendFormat(w.buf, timeLayout)
	w.leafEnd(name)
}

// leafBin writes binary data base64 encoded with encoding="base64", as the
// toolkit writes and reads CallId and Token (OSPPMsgBinFromElement).
func (w *xmlWriter) leafBin(name string, v []byte) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ` encoding="base64">`...)
	w.buf = base64.StdEncoding.AppendEncode(w.buf, v)
	w.leafEnd(name)
}

// leafOpt writes the leaf only when value is not empty.
func (w *xmlWriter) leafOpt(name, value string, attrs ...string) {
	if value != "" {
		w.leaf(name, value, attrs...)
	}
}

func (w *xmlWriter) escape(s string, attr bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !isXMLChar(r) {
			if w.err == nil {
				w.err = fmt.Errorf("osp: value %q is not XML character data", s)
			}
			return
		}
		switch r {
		case '&':
			w.buf = append(w.buf, "&amp;"...)
		case '<':
			w.buf = append(w.buf, "&lt;"...)
		case '>':
			w.buf = append(w.buf, "&gt;"...)
		case '"':
			if attr {
				w.buf = append(w.buf, "&quot;"...)
			} else {
				w.buf = append(w.buf, '"')
			}
		case '\n', '\r', '\t':
			if attr {
				w.buf = append(w.buf, "&#x"...)
				w.buf = strconv.AppendInt(w.buf, int64(r), 16)
				w.buf = append(w.buf, ';')
			} else if r == '\r' {
				w.buf = append(w.buf, "&#xD;"...)
			} else {
				w.buf = append(w.buf, byte(r))
			}
		default:
			w.buf = append(w.buf, s[i:i+size]...)
		}
		i += size
	}
}

// isXMLChar is the Char production of XML 1.0.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

func (w *xmlWriter) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.buf, nil
}
