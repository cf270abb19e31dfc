package caddyenroll_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// loadClient is the load generator's client: one keep-alive HTTP/1.1
// connection over TLS, one request at a time, Content-Length framing both
// ways — what a gateway's OSP library or a seed-era device speaks. It
// shares the machine's two cores with the server under test, so it does
// little beyond TLS: requests are written with one call from a reused
// buffer and answers are read into a reused buffer (valid until the next
// call).
type loadClient struct {
	addr string
	conf *tls.Config

	conn *tls.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

// newLoadClient makes a client of the server at addr (host:port), which
// is also the Host header; conf must name the server (ServerName).
func newLoadClient(addr string, conf *tls.Config) *loadClient {
	return &loadClient{addr: addr, conf: conf}
}

// post sends one request and returns the HTTP status and the body. A
// connection the server closed meanwhile is dialed again once.
func (c *loadClient) post(path, ctype string, body []byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		fresh := c.conn == nil
		if fresh {
			if err := c.dial(); err != nil {
				return 0, nil, err
			}
		}
		status, raw, keep, err := c.roundTrip(path, ctype, body)
		if err == nil && !keep {
			c.close()
		}
		if err == nil || fresh || attempt > 0 {
			if err != nil {
				c.close()
			}
			return status, raw, err
		}
		c.close() // a stale keep-alive connection: try once on a new one
	}
}

func (c *loadClient) dial() error {
	raw, err := net.Dial("tcp", c.addr)
	if err != nil {
		return err
	}
	conn := tls.Client(raw, c.conf)
	if err := conn.Handshake(); err != nil {
		raw.Close()
		return err
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

func (c *loadClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *loadClient) roundTrip(path, ctype string, body []byte) (status int, raw []byte, keep bool, err error) {
	r := append(c.req[:0], "POST "...)
	r = append(r, path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, c.addr...)
	r = append(r, "\r\nContent-Type: "...)
	r = append(r, ctype...)
	r = append(r, "\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(len(body)), 10)
	r = append(r, "\r\n\r\n"...)
	r = append(r, body...)
	c.req = r
	if _, err := c.conn.Write(r); err != nil {
		return 0, nil, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, false, errors.New("chunked answer: the server must send Content-Length")
		}
	}
	if length < 0 {
		return 0, nil, false, errors.New("answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	if _, err := io.ReadFull(c.br, c.body[:length]); err != nil {
		return 0, nil, false, err
	}
	return status, c.body[:length], keep, nil
}
