package osp

import (
	"strings"
	"time"
)

// CapabilitiesIndication is a device announcing its availability
// (OSPPTransactionIndicateCapability, src/ospcapind.c).
type CapabilitiesIndication struct {
	MessageID            string
	Random               string
	ComponentID          string
	Timestamp            time.Time
	DeviceInfo           []Info
	SourceAlternate      []Info
	OSPVersion           string
	AlmostOutOfResources bool // <Resources><AlmostOutOfResources>true</…>
}

// Kind implements Message.
func (*CapabilitiesIndication) Kind() Kind { return KindCapabilitiesIndication }

func decodeCapInd(env *envelope) (*CapabilitiesIndication, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	m := &CapabilitiesIndication{MessageID: env.messageID, Random: env.random}
	m.ComponentID, _ = c.attr("componentId")
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if m.Timestamp, err = decodeTime(e); err != nil {
				return nil, err
			}
		case "DeviceInfo":
			m.DeviceInfo = append(m.DeviceInfo, decodeInfo(e))
		case "SourceAlternate":
			m.SourceAlternate = append(m.SourceAlternate, decodeInfo(e))
		case "OSPVersion":
			m.OSPVersion = e.value()
		case "Resources":
			for r := range e.children {
				if r.name == "AlmostOutOfResources" {
					m.AlmostOutOfResources = strings.EqualFold(r.value(), "true")
				} else if err := checkUnknown(r); err != nil {
					return nil, err
				}
			}
		default:
			if err := checkUnknown(e); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Marshal implements Message, in the toolkit's element order.
func (m *CapabilitiesIndication) Marshal() ([]byte, error) {
	w := openMessage(m.MessageID, m.Random, 512)
	w.open("CapabilitiesIndication", "componentId", m.ComponentID)
	w.leafTime("Timestamp", m.Timestamp)
	writeInfos(w, "DeviceInfo", m.DeviceInfo)
	writeInfos(w, "SourceAlternate", m.SourceAlternate)
	w.leafOpt("OSPVersion", m.OSPVersion)
	w.open("Resources")
	if m.AlmostOutOfResources {
		w.leaf("AlmostOutOfResources", "true")
	} else {
		w.leaf("AlmostOutOfResources", "false")
	}
	w.close("Resources")
	w.close("CapabilitiesIndication")
	w.close("Message")
	return w.bytes()
}

// CapabilitiesConfirmation answers a CapabilitiesIndication
// (src/ospcapcnf.c reads Timestamp, OSPVersion and Status; the toolkit
// dereferences Status unchecked, so it is always written).
type CapabilitiesConfirmation struct {
	MessageID   string
	Random      string
	ComponentID string
	Timestamp   time.Time
	Status      Status
}

// Kind implements Message.
func (*CapabilitiesConfirmation) Kind() Kind { return KindCapabilitiesConfirmation }

func decodeCapCnf(env *envelope) (*CapabilitiesConfirmation, error) {
	c, err := env.single()
	if err != nil {
		return nil, err
	}
	m := &CapabilitiesConfirmation{MessageID: env.messageID, Random: env.random}
	m.ComponentID, _ = c.attr("componentId")
	hasStatus := false
	for e := range c.children {
		switch e.name {
		case "Timestamp":
			if m.Timestamp, err = decodeTime(e); err != nil {
				return nil, err
			}
		case "Status":
			if m.Status, err = decodeStatus(e); err != nil {
				return nil, err
			}
			hasStatus = true
		case "OSPVersion":
		default:
			if err := checkUnknown(e); err != nil {
				return nil, err
			}
		}
	}
	if !hasStatus {
		return nil, perr(ErrMissingElement, "<Status>")
	}
	return m, nil
}

// Marshal implements Message.
func (m *CapabilitiesConfirmation) Marshal() ([]byte, error) {
	w := openMessage(m.MessageID, m.Random, 300)
	w.open("CapabilitiesConfirmation", "componentId", m.ComponentID)
	w.leafTime("Timestamp", m.Timestamp)
	writeStatus(w, m.Status)
	w.close("CapabilitiesConfirmation")
	w.close("Message")
	return w.bytes()
}

// ConfirmCapabilities answers ind with st, echoing its ids.
func ConfirmCapabilities(ind *CapabilitiesIndication, st Status, now time.Time) *CapabilitiesConfirmation {
	return &CapabilitiesConfirmation{
		MessageID:   ind.MessageID,
		Random:      randomAttr(),
		ComponentID: ind.ComponentID,
		Timestamp:   now.UTC().Truncate(time.Second),
		Status:      st,
	}
}
