package caddyenroll

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxAdminBody bounds the request bodies of the admin API.
const maxAdminBody = 64 << 10

// readBody decodes the JSON body of an admin request into v; an empty body
// leaves v as it is. The body is read strictly: a field v lacks (a typo,
// "reson", would otherwise drop the reason and go ahead), a field given
// twice, data after the value, or a body larger than maxAdminBody (which would be cut, and decoded
// in part) is refused. So is a request that says its body is anything but
// JSON (jsonContent). The error is the API's answer.
func readBody(r *http.Request, v any) error {
	if err := jsonContent(r); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("reading the body: %v", err))
	}
	if len(b) > maxAdminBody {
		return apiErr(http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", maxAdminBody))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("decoding JSON body: %v", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiErr(http.StatusBadRequest, errors.New("decoding JSON body: data after the JSON value"))
	}
	if name := repeatedField(b); name != "" {
		return apiErr(http.StatusBadRequest, fmt.Errorf("decoding JSON body: field %q given twice", name))
	}
	return nil
}

// repeatedField is the first name of the JSON object b (decoded already)
// that repeats an earlier one, "" if none does. The decoder takes the last
// of a field given twice, and matches names regardless of case ("SERIAL",
// "ſerial"): {"serial": A, "serial": B} would act on B, silently, and a
// text/plain form could override the "=" its encoding puts in a value. The
// bodies are flat: only the top level is looked at; its names before the
// first repeat are no more than the body's type has fields (an unknown one
// failed decoding).
func repeatedField(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return ""
		}
		for _, s := range seen {
			if strings.EqualFold(s, name) {
				return name
			}
		}
		seen = append(seen, name)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// jsonContent refuses (415) a request whose Content-Type is other than
// application/json. A web page can make a browser send a POST to the admin
// endpoint without a CORS preflight only with a form's content types
// (form-encoded, multipart, text/plain); Caddy refuses such a request when
// the browser says where it comes from (Origin, Sec-Fetch-Mode), and this
// when it does not. A request without a Content-Type is taken: browsers
// send one with every form, and curl -X POST or Go's clients none.
func jsonContent(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return apiErr(http.StatusUnsupportedMediaType, fmt.Errorf("unacceptable content-type %q: the body must be application/json", ct))
}
