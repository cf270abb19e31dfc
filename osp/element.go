package osp

import (
	"sort"
	"strconv"
	"strings"
)

// Element is an XML element kept whole, for the parts of a message this
// package passes on without interpreting them (Usage.Statistics,
// Usage.Extra): its
// name, attributes in document order, value (its text without surrounding
// whitespace, as every value here) and child elements. Marshal writes it
// back as it came, except text beside child elements (mixed content,
// which the toolkit never writes) and attributes with an empty value.
type Element struct {
	Name     string
	Attrs    []Attr
	Value    string
	Children []Element
}

// Attr is an attribute of an Element.
type Attr struct {
	Name  string
	Value string
}

// decodeElement copies n and everything below it. The parse limits bound
// its size and depth.
func decodeElement(n *node) Element {
	e := Element{Name: n.name, Value: n.value()}
	for _, a := range n.attrs {
		e.Attrs = append(e.Attrs, Attr{a.name, a.value})
	}
	for c := range n.children {
		e.Children = append(e.Children, decodeElement(c))
	}
	return e
}

func writeElement(w *xmlWriter, e *Element) {
	attrs := make([]string, 0, 2*len(e.Attrs))
	for _, a := range e.Attrs {
		attrs = append(attrs, a.Name, a.Value)
	}
	if len(e.Children) == 0 {
		w.leaf(e.Name, e.Value, attrs...)
		return
	}
	w.open(e.Name, attrs...)
	for i := range e.Children {
		writeElement(w, &e.Children[i])
	}
	w.close(e.Name)
}

// Flatten names every value below e by its path, for records that keep
// statistics as flat name/value pairs: the names of the elements from e's
// children down, joined by ".", each followed by its attributes other
// than critical, sorted, as [name:value,…]. The toolkit's
// OSPPStatsToElement (src/ospstatistics.c) gives, e.g.,
//
//	LossSent.Packets                                                    1
//	LossReceived.Fraction                                               10
//	OneWayDelay.Mean                                                    20
//	Metrics[service:voice,type:rtp].Jitter[direction:source-to-reporter].Mean  12
//	RFactor[direction:source-to-reporter]                               80.000
//
// Values are the element's text exactly (numbers as the device wrote
// them). Every byte of an element or attribute name or attribute value
// that is not an ASCII letter, digit, "_" or "-" is written %XX, so that
// no name holds a separator (".", "[", "]", ":", ",", "=", ";", "#" or
// "\"). An element with children has a value of its own only when it has
// text. A name that comes twice gets "#2", "#3"… in document order.
func (e *Element) Flatten() map[string]string {
	return FlattenAll([]Element{*e})
}

// FlattenAll is Flatten of several elements (a usage's <Statistics>,
// normally one) into one map, numbering a name that comes again in a
// later element as Flatten numbers one that comes twice in one.
//
// The map holds at most MaxFlattenBytes of names and values: each name
// repeats its ancestors' names and attributes, so a message of
// DefaultLimits.MaxBytes with a long attribute over thousands of elements
// would flatten to gigabytes. What comes past the limit (in document
// order) is left out, and FlattenTruncated is then set to "true".
func FlattenAll(es []Element) map[string]string {
	f := flattener{out: map[string]string{}, seen: map[string]int{}, left: MaxFlattenBytes}
	for i := range es {
		for j := range es[i].Children {
			f.add("", &es[i].Children[j])
		}
	}
	if f.cut {
		f.out[FlattenTruncated] = "true"
	}
	return f.out
}

// MaxFlattenBytes bounds the names and values FlattenAll returns: four
// times the largest message, far above what devices report (the toolkit's
// statistics flatten to a few hundred bytes).
const MaxFlattenBytes = 4 * 256 << 10

// FlattenTruncated is the name FlattenAll sets when it left out what came
// past MaxFlattenBytes ("#" is escaped in every other name).
const FlattenTruncated = "#truncated"

// flattener numbers repeated names with a count per name, so that a
// device repeating one element thousands of times costs linear time.
type flattener struct {
	out  map[string]string
	seen map[string]int
	left int  // bytes of names and values out may still take
	cut  bool // something was left out: nothing more is added
}

func (f *flattener) add(prefix string, e *Element) {
	// a name is never shorter than its parent's: past the limit, this
	// element's and its children's are left out (and not even built)
	if f.cut || len(prefix) > f.left {
		f.cut = true
		return
	}
	var b strings.Builder
	b.WriteString(prefix)
	if prefix != "" {
		b.WriteByte('.')
	}
	b.WriteString(pathEscape(e.Name))
	var attrs []string
	for _, a := range e.Attrs {
		if a.Name != "critical" {
			attrs = append(attrs, pathEscape(a.Name)+":"+pathEscape(a.Value))
		}
	}
	if len(attrs) > 0 {
		sort.Strings(attrs)
		b.WriteString("[" + strings.Join(attrs, ",") + "]")
	}
	name := b.String()
	if len(e.Children) == 0 || e.Value != "" {
		// "#" is escaped in names: name#n is only ever name's n-th
		key := name
		if n := f.seen[name] + 1; n > 1 {
			key = name + "#" + strconv.Itoa(n)
		}
		if len(key)+len(e.Value) > f.left {
			f.cut = true
			return
		}
		f.seen[name]++
		f.left -= len(key) + len(e.Value)
		f.out[key] = e.Value
	}
	for i := range e.Children {
		f.add(name, &e.Children[i])
	}
}

// pathEscape writes %XX for every byte other than ASCII letters, digits,
// "_" and "-".
func pathEscape(s string) string {
	safe := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
	}
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			var b strings.Builder
			b.WriteString(s[:i])
			for ; i < len(s); i++ {
				if safe(s[i]) {
					b.WriteByte(s[i])
				} else {
					b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:]))
				}
			}
			return b.String()
		}
	}
	return s
}
