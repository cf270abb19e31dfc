package enrollclient

import (
	"bytes"
	"context"
	"crypto"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the client's output")

// readGolden returns the body of a golden file: everything after the
// leading '#' comment lines, to the last byte.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for bytes.HasPrefix(data, []byte("#")) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil
		}
		data = data[i+1:]
	}
	return data
}

func writeGolden(t *testing.T, name, comment string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		b.WriteString("# " + strings.TrimSpace(l) + "\n")
	}
	b.Write(body)
	if err := os.WriteFile(filepath.Join("testdata", name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixedCSR(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/device.csr.pem")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM in device.csr.pem")
	}
	return b.Bytes
}

// capture runs a real Enroll against the fake server with the nonces and
// CSR fixed, the server leaving the request pending, and returns the
// messages: getcacert, request, retrieve.
func capture(t *testing.T, field string, nonces ...string) []enrolltest.Message {
	t.Helper()
	srv := enrolltest.New(t, enrolltest.Config{Manual: true, Username: "mcmanus", Password: "01234567"})
	clk := newClock()
	c := newClient(t, srv, clk)
	c.DeviceName, c.DeviceID, c.Customer, c.Username, c.Password = "testtep4.transnexus.com", "134217728", "0", "mcmanus", "01234567"
	c.CSRField = field
	c.MaxWait = time.Nanosecond // request, one retrieve, give up
	n := 0
	c.nonceFunc = func() ([]byte, error) { v := nonces[n%len(nonces)]; n++; return []byte(v), nil }
	csr := fixedCSR(t)
	c.csrFunc = func(crypto.Signer, string) ([]byte, error) { return csr, nil }
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrPendingTimeout) {
		t.Fatalf("err = %v", err)
	}
	msgs := srv.Messages()
	if ops := srv.Ops(); !reflect.DeepEqual(ops, []string{"getcacert", "request", "retrieve"}) {
		t.Fatalf("ops %v", ops)
	}
	return msgs
}

// The client's bodies against the shapes of seed 001 Tables 2 and 4, with
// Table 4's values, its nonce and a fixed CSR (testdata/device.csr.pem,
// subject from Table 4).
func TestGoldenBodies(t *testing.T) {
	const table4Nonce = "1502767911902931"
	for _, field := range []string{wire.CSRFieldRequest, wire.CSRFieldCertReq} {
		msgs := capture(t, field, table4Nonce, "1502767911902932") // a second nonce must not be drawn
		type golden struct {
			file, comment, ctype string
			msg                  enrolltest.Message
		}
		gs := []golden{
			{"request.golden", `Seed 001 Table 4 shape: operation, nonce, username, password, device, customer, request.
				Values of Table 4 (nonce 1502767911902931, mcmanus / 01234567, device 134217728, customer 0);
				CSR = testdata/device.csr.pem as standard padded base64, every non-alphanumeric byte %XX (upper case).
				Content-Type: text/html. Format: '#' lines are comments; the rest is the body, no trailing newline.`,
				"text/html", msgs[1]},
			{"retrieve.golden", `retrieve: "only differs in the operation parameter" (seed 001, after Table 4):
				the request's nonce (1502767911902931) and CSR. Content-Type: text/html.`,
				"text/html", msgs[2]},
		}
		if field == wire.CSRFieldRequest {
			gs = append(gs, golden{"getcacert.golden", `Seed 001 Table 2: exactly "operation=getcacert" (19 bytes), Content-Type: text/plain.`,
				"text/plain", msgs[0]})
		} else {
			gs = gs[:1]
			gs[0].file = "request-certreq.golden"
			gs[0].comment = `As request.golden with the CSR under Table 1's name certreq= (Client.CSRField = "certreq").`
		}
		for _, g := range gs {
			if g.msg.ContentType != g.ctype {
				t.Errorf("%s: Content-Type %q, want %q", g.file, g.msg.ContentType, g.ctype)
			}
			if *update {
				writeGolden(t, g.file, g.comment, g.msg.Body)
				continue
			}
			if want := readGolden(t, g.file); !bytes.Equal(g.msg.Body, want) {
				t.Errorf("%s: body differs\n got: %s\nwant: %s", g.file, g.msg.Body, want)
			}
		}
	}
}

func TestGoldenShape(t *testing.T) {
	if got := readGolden(t, "getcacert.golden"); string(got) != "operation=getcacert" {
		t.Fatalf("getcacert golden %q", got)
	}
	for file, csrName := range map[string]string{"request.golden": "request", "retrieve.golden": "request", "request-certreq.golden": "certreq"} {
		body := string(readGolden(t, file))
		var order []string
		for _, pair := range strings.Split(body, "&") {
			name, _, _ := strings.Cut(pair, "=")
			order = append(order, name)
		}
		want := []string{"operation", "nonce", "username", "password", "device", "customer", csrName}
		if !reflect.DeepEqual(order, want) {
			t.Errorf("%s: variable order %v, want %v", file, order, want)
		}
		r, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !bytes.Equal(r.CSR, fixedCSR(t)) || r.Username != "mcmanus" || r.Password != "01234567" ||
			r.Device != "134217728" || r.Customer != "0" {
			t.Errorf("%s: decodes to %+v", file, r)
		}
	}
	// seed 001: a retrieve "only differs in the 'operation' parameter"
	if req := string(readGolden(t, "request.golden")); strings.Replace(req, "operation=request&", "operation=retrieve&", 1) !=
		string(readGolden(t, "retrieve.golden")) {
		t.Error("retrieve.golden differs from request.golden in more than the operation")
	}
	if !strings.HasPrefix(string(readGolden(t, "request.golden")),
		"operation=request&nonce=1502767911902931&username=mcmanus&password=01234567&device=134217728&customer=0&request=MII") {
		t.Error("request.golden does not start like seed 001 Table 4")
	}
}

// Given the OSP Toolkit's nonce and CSR, the client sends the toolkit's
// captured request body byte for byte (testdata/toolkit-request.golden, a
// copy of wire/testdata/request.golden).
func TestToolkitByteCompatible(t *testing.T) {
	want := readGolden(t, "toolkit-request.golden")
	r, err := wire.DecodeRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	msgs := capture(t, wire.CSRFieldRequest, string(r.Nonce), "other")
	if !bytes.Equal(msgs[1].Body, want) {
		t.Fatalf("body differs from the toolkit's\n got: %s\nwant: %s", msgs[1].Body, want)
	}
}
