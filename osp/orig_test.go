package osp

// The implementations this package had before its allocations were cut,
// verbatim but renamed: parseTree on encoding/xml alone, keeping each
// element's text; NormalizeSignalAddress concatenating strings; the writer
// formatting numbers and times into strings; decodeBin. compat_test.go
// checks that the new code gives the same results.

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// origNode is the node of parseTreeOrig.
type origNode struct {
	name     string
	attrs    []xmlAttr
	text     []byte
	children []*origNode
}

func (n *origNode) value() string { return strings.Trim(string(n.text), " \t\r\n") }

// parseTreeOrig is parseTree on encoding/xml alone.
func parseTreeOrig(data []byte, lim Limits) (*origNode, error) {
	if len(data) > lim.MaxBytes {
		return nil, perr(ErrTooLarge, "%d bytes, limit %d", len(data), lim.MaxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "us-ascii", "ascii":
			return r, nil
		}
		return nil, errEncodingLabel
	}
	var (
		root  *origNode
		stack []*origNode
		count int
	)
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errEncodingLabel) {
				return nil, perr(ErrEncoding, "%v", err)
			}
			return nil, perr(ErrMalformed, "%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, perr(ErrMalformed, "second root element <%s>", qname(t.Name))
			}
			count++
			if count > lim.MaxElements {
				return nil, perr(ErrTooManyElements, "more than %d elements", lim.MaxElements)
			}
			if len(stack) >= lim.MaxDepth {
				return nil, perr(ErrTooDeep, "deeper than %d", lim.MaxDepth)
			}
			if len(t.Attr) > lim.MaxAttrs {
				return nil, perr(ErrTooManyElements, "<%s> has %d attributes, limit %d", qname(t.Name), len(t.Attr), lim.MaxAttrs)
			}
			if dup := duplicateAttr(t.Attr); dup != "" {
				return nil, perr(ErrMalformed, "<%s> has attribute %s twice", qname(t.Name), dup)
			}
			n := &origNode{name: qname(t.Name)}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.attrs = append(n.attrs, xmlAttr{qname(a.Name), a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != qname(t.Name) {
				return nil, perr(ErrMalformed, "unexpected end tag </%s>", qname(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.Trim(t, " \t\r\n")) != 0 {
					return nil, perr(ErrMalformed, "text outside the root element")
				}
				continue
			}
			top := stack[len(stack)-1]
			top.text = append(top.text, t...)
		case xml.Directive:
			if bytes.HasPrefix(bytes.TrimLeft(t, " \t\r\n"), []byte("DOCTYPE")) {
				return nil, perr(ErrDOCTYPE, "DOCTYPE")
			}
			return nil, perr(ErrDOCTYPE, "markup declaration <!%.20s", t)
		case xml.ProcInst, xml.Comment:
			// The xml declaration was checked by the decoder (version 1.0,
			// encoding); other processing instructions and comments carry
			// nothing for OSP.
		}
	}
	if len(stack) != 0 {
		return nil, perr(ErrMalformed, "unexpected end of document inside <%s>", stack[len(stack)-1].name)
	}
	if root == nil {
		return nil, perr(ErrMalformed, "no element")
	}
	return root, nil
}

// origNormalizeSignalAddress is NormalizeSignalAddress built with string
// concatenation.
func origNormalizeSignalAddress(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty signal address")
	}
	if len(s) > MaxSignalAddress {
		return "", fmt.Errorf("signal address longer than %d bytes", MaxSignalAddress)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", fmt.Errorf("signal address %q: missing ]", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return "", fmt.Errorf("signal address %q: junk after ]", s)
			}
			port = port[1:]
			if port == "" {
				return "", fmt.Errorf("signal address %q: empty port", s)
			}
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("signal address %q: %q is not an IP address", s, host)
		}
	} else if _, err := netip.ParseAddr(s); err == nil {
		host = s // bare IPv6 (or IPv4) address without port
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return "", fmt.Errorf("signal address %q: empty port", s)
		}
	}
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 || strings.HasPrefix(port, "+") {
			return "", fmt.Errorf("signal address %q: bad port %q", s, port)
		}
		port = strconv.FormatUint(p, 10)
	}
	var out string
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("signal address %q: zoned address", s)
		}
		out = "[" + ip.Unmap().String() + "]"
	} else {
		if !origValidHostName(host) {
			return "", fmt.Errorf("signal address %q: %q is neither an IP address nor a host name", s, host)
		}
		out = strings.ToLower(strings.TrimSuffix(host, "."))
	}
	if port != "" {
		out += ":" + port
	}
	if len(out) > MaxSignalAddress {
		return "", fmt.Errorf("signal address longer than %d bytes", MaxSignalAddress)
	}
	return out, nil
}

func origValidHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// origWriter is xmlWriter formatting numbers and times into strings.
type origWriter struct {
	buf    []byte
	pretty bool
	err    error
}

func newOrigWriter(pretty bool, sizeHint int) *origWriter {
	w := &origWriter{buf: make([]byte, 0, sizeHint), pretty: pretty}
	w.buf = append(w.buf, xmlDecl...)
	w.nl()
	return w
}

func (w *origWriter) nl() {
	if w.pretty {
		w.buf = append(w.buf, '\n')
	}
}

// attrs are name/value pairs; an empty value drops the attribute.
func (w *origWriter) open(name string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *origWriter) attrs(attrs []string) {
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

func (w *origWriter) close(name string) {
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *origWriter) empty(name string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '/', '>')
	w.nl()
}

// leaf writes <name attrs>value</name>.
func (w *origWriter) leaf(name, value string, attrs ...string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.attrs(attrs)
	w.buf = append(w.buf, '>')
	w.escape(value, false)
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.nl()
}

func (w *origWriter) leafUint(name string, v uint64) {
	w.leaf(name, strconv.FormatUint(v, 10))
}

func (w *origWriter) leafTime(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.leaf(name, formatTime(t))
}

// leafBin writes binary data base64 encoded with encoding="base64", as the
// toolkit writes and reads CallId and Token (OSPPMsgBinFromElement).
func (w *origWriter) leafBin(name string, v []byte) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ` encoding="base64">`...)
	w.buf = base64.StdEncoding.AppendEncode(w.buf, v)
	w.buf = append(w.buf, '<', '/')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
	w.nl()
}

// leafOpt writes the leaf only when value is not empty.
func (w *origWriter) leafOpt(name, value string, attrs ...string) {
	if value != "" {
		w.leaf(name, value, attrs...)
	}
}

func (w *origWriter) escape(s string, attr bool) {
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

func (w *origWriter) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.buf, nil
}

// origOpenMessage starts a document with <Message messageId=… random=…>.
func origOpenMessage(messageID, random string, sizeHint int) *origWriter {
	w := newOrigWriter(true, sizeHint)
	w.open("Message", "messageId", messageID, "random", random)
	return w
}

func origWriteStatus(w *origWriter, st Status) {
	w.open("Status")
	w.leaf("Code", strconv.Itoa(st.Code))
	w.leafOpt("Description", st.Description)
	w.close("Status")
}

func origWriteService(w *origWriter, st ServiceType) {
	if st == "" {
		w.empty("Service")
		return
	}
	w.open("Service")
	w.empty("ServiceType", "type", st)
	w.close("Service")
}

func origWriteLimit(w *origWriter, d time.Duration, svc ServiceType) {
	w.open("UsageDetail")
	origWriteService(w, svc)
	w.leaf("Amount", strconv.FormatInt(int64(d/time.Second), 10))
	w.leaf("Increment", "1")
	w.leaf("Unit", "s")
	w.close("UsageDetail")
}

func origWriteDestination(w *origWriter, d *ResponseDestination) {
	w.open("Destination")
	if d.SourceInfo.Value != "" {
		w.leaf("SourceInfo", d.SourceInfo.Value, "type", d.SourceInfo.Type)
	}
	w.leafOpt("SignalingProtocol", d.Protocol)
	w.leafOpt("OSPVersion", d.OSPVersion)
	if d.DestinationInfo.Value != "" {
		w.leaf("DestinationInfo", d.DestinationInfo.Value, "type", d.DestinationInfo.Type)
	}
	w.leafOpt("DestinationSignalAddress", d.SignalAddress)
	w.leafOpt("DestinationAlternate", d.NetworkID, "type", TypeNetwork)
	if len(d.Token) > 0 {
		w.leafBin("Token", d.Token)
	}
	w.leafTime("ValidAfter", d.ValidAfter)
	w.leafTime("ValidUntil", d.ValidUntil)
	if d.MaxDuration >= time.Second {
		origWriteLimit(w, d.MaxDuration, d.Service)
	}
	if len(d.CallID) > 0 {
		w.leafBin("CallId", d.CallID)
	}
	w.close("Destination")
}

func origEncodeToken(t *TokenInfo) ([]byte, error) {
	w := newOrigWriter(false, 560)
	w.open("TokenInfo", "random", t.Random)
	w.leaf("SourceInfo", t.SourceInfo.Value, "type", t.SourceInfo.Type)
	w.leaf("DestinationInfo", t.DestinationInfo.Value, "type", t.DestinationInfo.Type)
	w.leafOpt("DestinationAlternate", t.SignalAddress, "type", TypeTransport)
	w.leafOpt("DestinationAlternate", t.NetworkID, "type", TypeNetwork)
	if len(t.CallID) > 0 {
		w.leafBin("CallId", t.CallID)
	}
	w.leaf("ValidAfter", formatTime(t.ValidAfter))
	w.leaf("ValidUntil", formatTime(t.ValidUntil))
	w.leafUint("TransactionId", t.TransactionID)
	if t.MaxDuration >= time.Second {
		origWriteLimit(w, t.MaxDuration, t.Service)
	}
	w.close("TokenInfo")
	return w.bytes()
}

func origMarshalAuthRsp(r *AuthorisationResponse) ([]byte, error) {
	w := origOpenMessage(r.MessageID, r.Random, 1024+len(r.Destinations)*2600)
	w.open("AuthorisationResponse", "componentId", r.ComponentID)
	w.leafTime("Timestamp", r.Timestamp)
	origWriteStatus(w, r.Status)
	if r.TransactionID != 0 {
		w.leafUint("TransactionId", r.TransactionID)
	}
	for i := range r.Destinations {
		origWriteDestination(w, &r.Destinations[i])
	}
	w.close("AuthorisationResponse")
	w.close("Message")
	return w.bytes()
}

// origDecodeBin is decodeBin, each value in its own array.
func origDecodeBin(n *node, max int) ([]byte, error) {
	enc, _ := n.attr("encoding")
	v := n.value()
	switch enc {
	case "base64":
		clean := strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, v)
		if base64.StdEncoding.DecodedLen(len(clean)) > max+2 {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, perr(ErrInvalidValue, "<%s>: %v", n.name, err)
		}
		if len(b) > max {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		return b, nil
	case "", "cdata":
		if len(v) > max {
			return nil, perr(ErrInvalidValue, "<%s> longer than %d bytes", n.name, max)
		}
		return []byte(v), nil
	}
	return nil, perr(ErrInvalidValue, "<%s> encoding %q", n.name, enc)
}
