package osp

// Operator names: what a source device learned about the carrier that
// serves the called number (from its number portability or carrier
// lookup), set with OSPPTransactionSetOperatorName (src/osptransapi.c) and
// written as DestinationInfo elements after the number portability data
// (src/ospauthreq.c, OSPPOperatorNameToElement). The toolkit reads the
// same types from each <Destination> of an answer
// (src/ospdest.c OSPPDestInfoFromElement) and hands them to the
// application with OSPPTransactionGetOperatorName: Asterisk sets
// OSPOUTSPID, OSPOUTOCN… from them, and the OpenSIPS/Kamailio module adds
// them to the outgoing Request-URI (";spid=…;ocn=…"). An answer that
// leaves them out drops what the source knew about the call on its way out,
// as one without the number portability data would.
const (
	TypeSPID    = "spid"    // service provider id
	TypeAltSPID = "altspid" // alternate service provider id
	TypeOCN     = "ocn"     // operating company number
	TypeSPN     = "spn"     // service provider name
	TypeAltSPN  = "altspn"  // alternate service provider name
	TypeMCC     = "mcc"     // mobile country code
	TypeMNC     = "mnc"     // mobile network code
)

// operatorNameTypes are the operator name types in the toolkit's order
// (OSPE_OPERATOR_NAME), the order they are written in.
var operatorNameTypes = [...]string{TypeSPID, TypeAltSPID, TypeOCN, TypeSPN, TypeAltSPN, TypeMCC, TypeMNC}

// maxOperatorName is the longest operator name the toolkit stores back:
// it copies each into char OpName[…][OSPC_SIZE_NORID] (256) with
// strncpy, so 256 bytes would leave it unterminated.
const maxOperatorName = 255

// operatorNames returns the operator names among DestinationInfo
// elements, the first of each type, in the toolkit's order. Names the
// toolkit could not store back (empty, longer than maxOperatorName, with
// control characters) are left out: they are the device's information,
// not the call's routing, so the call goes on without them.
func operatorNames(infos []Info) []Info {
	var names []Info
	for _, typ := range operatorNameTypes {
		for _, in := range infos {
			if in.Type == typ {
				if validOperatorName(in.Value) {
					names = append(names, in)
				}
				break
			}
		}
	}
	return names
}

func validOperatorName(s string) bool {
	return s != "" && len(s) <= maxOperatorName && controlAt(s) < 0
}

// OperatorNames returns the operator names the request carries for the
// called number (OSPPTransactionSetOperatorName), those an answer can
// echo.
func (r *AuthorizationRequest) OperatorNames() []Info {
	return operatorNames(r.DestinationInfo)
}

// writeOperatorNames writes names as DestinationInfo elements.
func writeOperatorNames(w *xmlWriter, names []Info) {
	for _, in := range names {
		w.leaf("DestinationInfo", in.Value, "type", in.Type)
	}
}

// operatorNamesSize is a little more than writing names takes (unless
// values need escaping).
func operatorNamesSize(names []Info) int {
	n := 0
	for _, in := range names {
		n += 50 + len(in.Type) + len(in.Value)
	}
	return n
}
