package osp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// Limits bound what the parsers accept. OSP messages are small: the largest
// capture (usage-indication.xml) is 1.3 KB with 28 elements nested 6 deep.
type Limits struct {
	MaxBytes    int // whole document, checked before parsing
	MaxDepth    int // element nesting, root is depth 1
	MaxElements int // elements in the document
	MaxAttrs    int // attributes of one element
}

// DefaultLimits are the limits of ParseRequest and the other parsers
// (ParseTokenInfo takes MaxTokenBytes). Treat it as read-only; use
// ParseRequestWithLimits for others. An HTTP handler should read at most
// MaxBytes+1 bytes of a body and refuse a longer one.
//
// The largest request is a UsageIndication of a source that tried every
// destination of an answer, one component each: up to 100, the enroll
// app's largest max_destinations. The toolkit writes about 1.6 KB and 40
// elements per attempt, so the former limit of 64 KB held only 40 of them.
var DefaultLimits = Limits{
	MaxBytes:    256 << 10,
	MaxDepth:    16,
	MaxElements: 8192,
	MaxAttrs:    16,
}

// node is one element of a parsed document. val is what the protocol
// means by the element's value: its character data concatenated, without
// surrounding whitespace (see value).
type node struct {
	name  string
	attrs []xmlAttr
	val   string
	first *node // first child element
	next  *node // next sibling element
}

// children yields the child elements in document order:
// for c := range n.children { … }.
func (n *node) children(yield func(*node) bool) {
	for c := n.first; c != nil; c = c.next {
		if !yield(c) {
			return
		}
	}
}

// addChild makes c the last child of n, whose last child so far is last.
func (n *node) addChild(last, c *node) {
	if last == nil {
		n.first = c
	} else {
		last.next = c
	}
}

type xmlAttr struct{ name, value string }

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.name == name {
			return a.value, true
		}
	}
	return "", false
}

// value is the element's text without surrounding whitespace: the toolkit
// writes a newline after every start tag, so "<Timestamp>\n2026-…" is what
// its requests carry.
func (n *node) value() string { return n.val }

// xmlSpace is the whitespace trimmed from values and allowed around the
// root element.
const xmlSpace = " \t\r\n"

// critical follows OSPPMsgElemIsCritical (src/ospmsgutil.c): an element is
// critical unless a critical attribute says "false" (case-insensitively).
func (n *node) critical() bool {
	for _, a := range n.attrs {
		if a.name == "critical" && strings.EqualFold(a.value, "false") {
			return false
		}
	}
	return true
}

var errEncodingLabel = errors.New("unsupported encoding")

// duplicateAttr is the name of an attribute attrs has twice, or "".
func duplicateAttr(attrs []xml.Attr) string {
	for i, a := range attrs {
		for _, b := range attrs[:i] {
			if a.Name == b.Name {
				return qname(a.Name)
			}
		}
	}
	return ""
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// parseTree parses a whole document into a tree, enforcing lim. It refuses
// DOCTYPE and every other markup declaration (encoding/xml never resolves
// external entities, and with Strict set it refuses undeclared ones; the
// declaration is refused outright so that nothing DTD-shaped is ever
// accepted), encodings other than UTF-8 and US-ASCII, text or a second
// element outside the root, and mismatched end tags.
//
// parseTreeFast takes the documents devices send (see there); everything
// else, and every error, is left to parseTreeStd, built on encoding/xml, so
// the two always yield the same tree or error (FuzzParseTree checks it).
func parseTree(data []byte, lim Limits) (*node, error) {
	if len(data) > lim.MaxBytes {
		return nil, perr(ErrTooLarge, "%d bytes, limit %d", len(data), lim.MaxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if root, ok := parseTreeFast(data, lim); ok {
		return root, nil
	}
	return parseTreeStd(data, lim)
}

// parseTreeStd is parseTree with encoding/xml, for any document (data
// without byte order mark, within lim.MaxBytes).
func parseTreeStd(data []byte, lim Limits) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "us-ascii", "ascii":
			return r, nil
		}
		return nil, errEncodingLabel
	}
	// frame is an open element, its last child and the character data it
	// has so far.
	type frame struct {
		n, last *node
		text    []byte
	}
	var (
		root  *node
		stack []frame
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
				// XML 1.0's "Unique Att Spec": encoding/xml keeps both, and
				// parsers that keep the first and the last would disagree
				return nil, perr(ErrMalformed, "<%s> has attribute %s twice", qname(t.Name), dup)
			}
			n := &node{name: qname(t.Name)}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				n.attrs = append(n.attrs, xmlAttr{qname(a.Name), a.Value})
			}
			if len(stack) > 0 {
				p := &stack[len(stack)-1]
				p.n.addChild(p.last, n)
				p.last = n
			} else {
				root = n
			}
			stack = append(stack, frame{n: n})
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].n.name != qname(t.Name) {
				return nil, perr(ErrMalformed, "unexpected end tag </%s>", qname(t.Name))
			}
			top := stack[len(stack)-1]
			top.n.val = strings.Trim(string(top.text), xmlSpace)
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.Trim(t, xmlSpace)) != 0 {
					return nil, perr(ErrMalformed, "text outside the root element")
				}
				continue
			}
			top := &stack[len(stack)-1]
			top.text = append(top.text, t...) // copied: the decoder reuses t
		case xml.Directive:
			if bytes.HasPrefix(bytes.TrimLeft(t, xmlSpace), []byte("DOCTYPE")) {
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
		return nil, perr(ErrMalformed, "unexpected end of document inside <%s>", stack[len(stack)-1].n.name)
	}
	if root == nil {
		return nil, perr(ErrMalformed, "no element")
	}
	return root, nil
}
