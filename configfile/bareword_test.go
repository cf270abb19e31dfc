package configfile

import "testing"

// Seed 001, "group name": "If the name consists of more than one word, the
// entire name should be enclosed in double quotation marks." A one-word
// name needs no quotes, whatever its characters; the device and route
// items take the group name the same way ("enclosed in quotation marks if
// the name is more than one word").
func TestOneWordNamesUnquoted(t *testing.T) {
	tests := []struct {
		name, src, group string
	}{
		{"ampersand", "group AT&T\ndevice gw.example AT&T enabled\n", "AT&T"},
		{"accented letters", "group Télécom\ndevice gw.example Télécom enabled\n", "Télécom"},
		{"parentheses", "group Carrier(UK)\ndevice gw.example Carrier(UK) enabled\n", "Carrier(UK)"},
		{"comma and equals", "group tier=1,east\ndevice gw.example tier=1,east enabled\n", "tier=1,east"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("b.conf", []byte(tt.src))
			if err != nil {
				t.Fatalf("one-word group name refused unquoted: %v", err)
			}
			if len(f.Groups) != 1 || f.Groups[0].Name != tt.group {
				t.Fatalf("groups %+v, want one named %q", f.Groups, tt.group)
			}
			if d, ok := f.Device("gw.example"); !ok || d.Group != tt.group {
				t.Fatalf("device %+v, want group %q", d, tt.group)
			}
		})
	}
}
