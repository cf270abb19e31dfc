package wire_test

import (
	"fmt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The server side: decode a body, answer with a status.
func Example_server() {
	body := []byte("operation=request&nonce=150276791%0019029%00&username=mcmanus&password=01234567" +
		"&device=134217728&customer=0")
	req, err := wire.DecodeRequest(body)
	if err != nil {
		fmt.Println(err)
		code := wire.StatusForError(err)
		fmt.Printf("%q\n", wire.AppendResponse(nil, wire.Response{Status: code, Error: wire.StatusText(code)}))
	}
	_ = req
	// Output:
	// wire: request: missing certificate request (request= or certreq=)
	// "status=2&error=bad%20request\n"
}

// The device side: build the toolkit's body, read the answer.
func Example_client() {
	body := wire.EncodeRequest(wire.Request{Operation: wire.OpGetCACert})
	fmt.Printf("%s (%s)\n", body, wire.RequestContentType(wire.OpGetCACert))

	resp, err := wire.DecodeResponse([]byte("status=1&nonce=A1F0765F71C9E6AD\n"))
	fmt.Println(resp.Status, resp.Nonce, err)
	// Output:
	// operation=getcacert (text/plain)
	// 1 A1F0765F71C9E6AD <nil>
}
