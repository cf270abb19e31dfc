package osp

import (
	"strings"
	"unicode/utf8"
)

// parseTreeFast parses, without encoding/xml and with a handful of
// allocations, the documents devices and this package write: an optional
// plain XML declaration, then elements with ASCII names (no namespace
// prefix), quoted attributes, and text without references ("&…;"), '>',
// CDATA, comments or processing instructions, and not on both sides of a
// child element (mixed content).
//
// It yields exactly the tree parseTreeStd yields for such a document, and
// ok=false for anything else: another construct, a limit of lim reached,
// elements nested deeper than 16, or any error. parseTree then gives the
// document to parseTreeStd, which accepts or refuses it as before. So
// parseTreeFast never refuses anything itself, and it must never accept a
// document parseTreeStd refuses (FuzzParseTree compares parseTree with the
// original parser on encoding/xml alone, orig_test.go).
//
// The nodes are one array. The parser works on one copy of data as a
// string, which the tree's strings share: the tree never refers to data.
func parseTreeFast(data []byte, lim Limits) (root *node, ok bool) {
	p := fastParser{doc: string(data), lim: lim}
	// Every element starts with a '<' that no '/', '?' or '!' follows, and
	// '<' is nowhere else in a document this parser takes: so the nodes
	// fit, and pointers to them stay valid while the tree grows.
	elems, attrs := countMarkup(p.doc)
	if elems < 1 || elems > lim.MaxElements {
		return nil, false
	}
	p.nodes = make([]node, 0, elems)
	p.attrs = make([]xmlAttr, 0, attrs)

	for _, decl := range fastXMLDecls {
		if strings.HasPrefix(p.doc, decl) {
			p.pos = len(decl)
			break
		}
	}
	for {
		lt := strings.IndexByte(p.doc[p.pos:], '<')
		if lt < 0 {
			if !p.text(p.doc[p.pos:]) {
				return nil, false
			}
			break
		}
		if !p.text(p.doc[p.pos : p.pos+lt]) {
			return nil, false
		}
		p.pos += lt + 1 // after '<'
		if p.pos >= len(p.doc) {
			return nil, false
		}
		switch p.doc[p.pos] {
		case '/':
			p.pos++
			ok = p.endTag()
		case '?', '!':
			ok = false // processing instruction, comment, CDATA, DOCTYPE
		default:
			ok = p.startTag()
		}
		if !ok {
			return nil, false
		}
	}
	if p.depth != 0 || len(p.nodes) == 0 {
		return nil, false
	}
	return &p.nodes[0], true
}

// countMarkup returns the number of '<' that no '/', '?' or '!' follows,
// and of '=' that a quote follows (perhaps after whitespace): in a
// document parseTreeFast takes, the number of elements, and at least that
// of attributes.
func countMarkup(doc string) (elems, attrs int) {
	for s := doc; ; {
		i := strings.IndexByte(s, '<')
		if i < 0 || i+1 >= len(s) {
			break
		}
		if c := s[i+1]; c != '/' && c != '?' && c != '!' {
			elems++
		}
		s = s[i+1:]
	}
	for s := doc; ; {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			break
		}
		s = s[i+1:]
		j := 0
		for j < len(s) && isSpaceByte(s[j]) {
			j++
		}
		if j < len(s) && (s[j] == '"' || s[j] == '\'') {
			attrs++
		}
	}
	return elems, attrs
}

// fastXMLDecls are the XML declarations parseTreeFast knows.
var fastXMLDecls = []string{
	xmlDecl,
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
}

type fastParser struct {
	doc   string // a copy of the document
	pos   int
	lim   Limits
	nodes []node                      // in document order; nodes[0] is the root
	attrs []xmlAttr                   // the attributes of all nodes, each node's in a row
	stack [16]struct{ n, last *node } // the open elements and their last children
	depth int                         // of stack
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// trimSpace is strings.Trim(s, xmlSpace).
func trimSpace(s string) string {
	for len(s) > 0 && isSpaceByte(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpaceByte(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func (p *fastParser) skipSpace() {
	for p.pos < len(p.doc) && isSpaceByte(p.doc[p.pos]) {
		p.pos++
	}
}

// name reads an element or attribute name: an ASCII letter or '_', then
// letters, digits, '_', '-', '.'. A name with ':' or a non-ASCII letter is
// left to parseTreeStd.
func (p *fastParser) name() (string, bool) {
	start := p.pos
	for p.pos < len(p.doc) {
		c := p.doc[p.pos]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' ||
			p.pos > start && ('0' <= c && c <= '9' || c == '-' || c == '.') {
			p.pos++
			continue
		}
		if c == ':' || c >= utf8.RuneSelf || '0' <= c && c <= '9' || c == '-' || c == '.' {
			return "", false // more of a name encoding/xml would read
		}
		break
	}
	return p.doc[start:p.pos], p.pos > start
}

// validChars reports whether s is character data parseTreeFast takes as
// is: XML characters, no reference ("&…;") and no '<'. Text (inAttr false)
// must not have '>' either (encoding/xml refuses "]]>"); an attribute value
// must not have '\r' (encoding/xml turns it into '\n'; text is checked for
// that once trimmed).
func validChars(s string, inAttr bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '&' || c == '<' || c == '>' && !inAttr || c == '\r' && inAttr:
			return false
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t' || c == '\n' || c == '\r':
			i++
		case c < utf8.RuneSelf:
			return false
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
				return false
			}
			i += size
		}
	}
	return true
}

// text takes the character data before the next tag.
func (p *fastParser) text(s string) bool {
	if !validChars(s, false) {
		return false
	}
	v := trimSpace(s)
	if v == "" {
		return true
	}
	if p.depth == 0 || strings.IndexByte(v, '\r') >= 0 {
		return false // text outside the root, or a newline to normalise
	}
	n := p.stack[p.depth-1].n
	if n.val != "" {
		return false // text on both sides of a child: mixed content
	}
	n.val = v
	return true
}

// startTag reads a start tag after its '<'.
func (p *fastParser) startTag() bool {
	name, ok := p.name()
	if !ok || len(p.nodes) == cap(p.nodes) || p.depth >= p.lim.MaxDepth || p.depth >= len(p.stack) {
		return false
	}
	if p.depth == 0 && len(p.nodes) > 0 {
		return false // a second root element
	}
	first, count := len(p.attrs), 0
	empty, xmlns := false, false
	for {
		p.skipSpace()
		if p.pos >= len(p.doc) {
			return false
		}
		if c := p.doc[p.pos]; c == '>' {
			p.pos++
			break
		} else if c == '/' {
			if !strings.HasPrefix(p.doc[p.pos:], "/>") {
				return false
			}
			p.pos += 2
			empty = true
			break
		}
		attr, ok := p.name()
		if !ok {
			return false
		}
		p.skipSpace()
		if !strings.HasPrefix(p.doc[p.pos:], "=") {
			return false
		}
		p.pos++
		p.skipSpace()
		if p.pos >= len(p.doc) || p.doc[p.pos] != '"' && p.doc[p.pos] != '\'' {
			return false
		}
		quote := p.doc[p.pos]
		p.pos++
		end := strings.IndexByte(p.doc[p.pos:], quote)
		if end < 0 {
			return false
		}
		val := p.doc[p.pos : p.pos+end]
		p.pos += end + 1
		if !validChars(val, true) {
			return false
		}
		if count++; count > p.lim.MaxAttrs {
			return false
		}
		if attr == "xmlns" {
			if xmlns {
				return false // twice: the full parser says so
			}
			xmlns = true
			continue
		}
		for _, a := range p.attrs[first:] {
			if a.name == attr {
				return false
			}
		}
		p.attrs = append(p.attrs, xmlAttr{attr, val})
	}

	p.nodes = append(p.nodes, node{name: name})
	n := &p.nodes[len(p.nodes)-1]
	if len(p.attrs) > first {
		n.attrs = p.attrs[first:len(p.attrs):len(p.attrs)]
	}
	if p.depth > 0 {
		parent := &p.stack[p.depth-1]
		parent.n.addChild(parent.last, n)
		parent.last = n
	}
	if !empty {
		p.stack[p.depth].n, p.stack[p.depth].last = n, nil
		p.depth++
	}
	return true
}

// endTag reads an end tag after its "</".
func (p *fastParser) endTag() bool {
	name, ok := p.name()
	if !ok {
		return false
	}
	p.skipSpace()
	if !strings.HasPrefix(p.doc[p.pos:], ">") {
		return false
	}
	p.pos++
	if p.depth == 0 || p.stack[p.depth-1].n.name != name {
		return false
	}
	p.depth--
	return true
}
