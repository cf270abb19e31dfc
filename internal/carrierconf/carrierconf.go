// Package carrierconf writes configuration files of a carrier's size for
// the Benchmark…Large… benchmarks of configfile, routing and caddyenroll:
// one generator, so that their figures are of the same file.
package carrierconf

import (
	"fmt"
	"strconv"
)

// Spec says what the file holds.
type Spec struct {
	Devices, Routes, Groups int
	Crypto                  string           // the crypto item's value
	Name                    func(int) string // device i's name
	Status                  func(int) string // device i's flags, e.g. " enabled enrolled"
}

// Write returns the file: the flags, groups "" and grp1…, the devices in
// groups i%Groups, then routes of distinct prefixes ('+D K...', one group
// each in turn) naming three devices with weights 60, 30 and 0.
func Write(s Spec) []byte {
	b := make([]byte, 0, 120*(s.Devices+s.Routes))
	b = append(b, "crypto '"+s.Crypto+"'\nenroll enabled\nrouting enabled\nssl enabled\ngroup \"\"\n"...)
	gname := func(g int) string {
		if g == 0 {
			return `""`
		}
		return "grp" + strconv.Itoa(g)
	}
	for g := 1; g < s.Groups; g++ {
		b = append(b, "group "+gname(g)+"\n"...)
	}
	for d := range s.Devices {
		b = fmt.Appendf(b, "device %s %s%s\n", s.Name(d), gname(d%s.Groups), s.Status(d))
	}
	for i := range s.Routes {
		g, k := i%s.Groups, i/s.Groups
		d0 := (i * 7) % s.Devices
		d1 := (d0 + 1 + i%13) % s.Devices
		d2 := (d1 + 1 + i%17) % s.Devices
		b = fmt.Appendf(b, "route %s '+%d %d...' %s 60 %s 30 %s 0\n", gname(g), 1+k%9, k, s.Name(d0), s.Name(d1), s.Name(d2))
	}
	return b
}

// CarrierName is devN.carrier.example.net.
func CarrierName(i int) string { return "dev" + strconv.Itoa(i) + ".carrier.example.net" }
