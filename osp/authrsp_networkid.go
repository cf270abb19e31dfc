package osp

// A destination's network id (<DestinationAlternate type="network">) goes
// to the source device, whose gateway software may put it into SIP: the
// OpenSIPS/Kamailio osp module appends it to the outgoing Request-URI as
// ";networkid=<id>" by default (networkid_location 2), unescaped. A name
// that is not a URI parameter value there ("GW 1", "a;b", "Télécom")
// makes that INVITE malformed and the call fails; such a name is left out
// of the answer's destination (the module then sends none, as for a
// clearinghouse that gives no network id) and kept in the token, where the
// terminating side and reauthorization read it.

// sourceNetworkID is the network id an answer's destination carries for
// a device: the name when every byte is a SIP URI paramchar unescaped
// (RFC 3261: alphanumerics, "-_.!~*'()" and "[]/:&+$"), else none.
func sourceNetworkID(device string) string {
	for i := 0; i < len(device); i++ {
		if !uriParamChar(device[i]) {
			return ""
		}
	}
	return device
}

func uriParamChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '~', '*', '\'', '(', ')', '[', ']', '/', ':', '&', '+', '$':
		return true
	}
	return false
}
