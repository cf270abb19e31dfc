package caddyenroll

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RequestInfo is a request as the admin API shows it.
type RequestInfo struct {
	ID              string    `json:"id"`
	Profile         string    `json:"profile"`
	Device          string    `json:"device"`
	KnownDevice     bool      `json:"known_device"` // the file lists the device (pending: now; decided: when the request came)
	DeviceID        string    `json:"device_id,omitempty"`
	Customer        string    `json:"customer,omitempty"`
	Username        string    `json:"username,omitempty"`
	ClientAddr      string    `json:"client_addr,omitempty"`
	PublicKeySHA256 string    `json:"public_key_sha256"`
	State           string    `json:"state"`
	Reason          string    `json:"reason,omitempty"`
	Held            bool      `json:"held,omitempty"` // pending: the device reached max_issued_per_device (reason says until when)
	Serial          string    `json:"serial,omitempty"`
	NotAfter        time.Time `json:"not_after,omitzero"`
	Created         time.Time `json:"created"`
	Updated         time.Time `json:"updated"`
}

func requestInfo(r *Request) RequestInfo {
	return RequestInfo{ID: r.ID, Profile: r.Profile, Device: r.Device, KnownDevice: r.Known,
		DeviceID: r.DeviceID, Customer: r.Customer, Username: r.Username, ClientAddr: r.ClientAddr,
		PublicKeySHA256: r.PublicKeySHA256, State: r.State, Reason: r.Reason, Held: r.Held, Serial: r.Serial,
		NotAfter: r.NotAfter, Created: r.Created, Updated: r.Updated}
}

// listRequests answers a page of requests, in id order, as a JSON array.
// When more follow, the Link header names the next page (RFC 8288,
// rel="next"): the same list, after the page's last id.
func (ad *adminAPI) listRequests(w http.ResponseWriter, r *http.Request, state string) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	switch state {
	case "", statePending, stateIssued, stateRejected:
	default:
		return apiErr(http.StatusBadRequest, fmt.Errorf("unknown state %q", state))
	}
	q := r.URL.Query()
	after, limit, err := pageQuery(q)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	reqs, more, err := ad.app.state.requestPage(r.Context(), state, after, limit)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	out := make([]RequestInfo, 0, len(reqs))
	for _, q := range reqs {
		info := requestInfo(q)
		if q.State == statePending && ad.app.cfg != nil { // the operator may have added it since
			info.KnownDevice = ad.app.cfg.device(q.Device).Known
		}
		out = append(out, info)
	}
	if more {
		next := url.Values{"after": {out[len(out)-1].ID}, "limit": {strconv.Itoa(limit)}}
		if s := q.Get("state"); s != "" {
			next.Set("state", s)
		}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	if state == statePending && after == "" && !more {
		pendingSet(len(out)) // the whole list
	}
	return writeJSON(w, out)
}

type approveBody struct {
	Group string `json:"group,omitempty"`
}

type rejectBody struct {
	Reason string `json:"reason,omitempty"`
}

// checkRequestID refuses (400) an approve or reject path's id that is not a
// request id or a prefix of one: hex digits, at most an id's 32. Storage
// would be asked for anything, as a key's name, and a typo answered 404 or
// 500; a long one is not repeated whole in the answer and the log.
func checkRequestID(id string) error {
	if len(id) <= 32 && strings.Trim(strings.ToLower(id), "0123456789abcdef") == "" {
		return nil
	}
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	return apiErr(http.StatusBadRequest, fmt.Errorf("%q is not a request id (hex, a prefix of 6 digits or more)", id))
}

func (ad *adminAPI) approve(w http.ResponseWriter, r *http.Request, id string) error {
	if r.Method != http.MethodPost {
		return notAllowed(w, r, http.MethodPost)
	}
	if err := checkRequestID(id); err != nil {
		return err
	}
	var body approveBody
	if err := readBody(r, &body); err != nil {
		return err
	}
	req, err := ad.app.approve(r.Context(), id, body.Group)
	if err != nil {
		return actionErr(err)
	}
	answer := struct {
		RequestInfo
		Note string `json:"note,omitempty"`
	}{RequestInfo: requestInfo(req)}
	var notes []string
	d := ad.app.cfg.device(req.Device)
	if body.Group != "" && req.Known && body.Group != d.Group {
		// a group places only a device the file lacks: the operator may
		// have meant to move it, or another approval added it meanwhile
		notes = append(notes, fmt.Sprintf("%s is in group %q of the configuration file: the group %q given was not applied (edit the file to move it)",
			req.Device, d.Group, body.Group))
	}
	// the device's addition or mark waits in storage for the file (as a
	// revoke's unmark may): say so, lest the operator look for the device
	// in the file, or in the device list, in vain
	if !d.Enrolled && ad.app.storage.Exists(r.Context(), deferredMarkKey(req.Device)) {
		what := "marked enrolled"
		if !req.Known {
			what = "added to it"
		}
		notes = append(notes, ad.waitNote(req.Device, what, nil))
	}
	answer.Note = strings.Join(notes, "; ")
	return writeJSON(w, answer)
}

// waitNote is the "note" of an answer whose edit of the configuration file
// waits in storage (deferMark): device will be what once the file can be
// edited. It says why the file cannot be edited now: one that is missing or
// cannot be written does parse, and "does not parse" would send the
// operator looking for errors it does not have. cause is the edit's error,
// nil when unknown (the file on disk is then read again to tell).
func (ad *adminAPI) waitNote(device, what string, cause error) string {
	if cause == nil {
		_, _, cause = readConfigFile(ad.app.ConfigFile)
	}
	switch {
	case cause != nil && parseError(cause):
		return fmt.Sprintf("the configuration file %s does not parse: %s will be %s once it does", ad.app.ConfigFile, device, what)
	case cause == nil:
		cause = errors.New("it could not be written; the log says why")
	}
	return fmt.Sprintf("the configuration file %s cannot be edited now (%v): %s will be %s once it can", ad.app.ConfigFile, cause, device, what)
}

func (ad *adminAPI) reject(w http.ResponseWriter, r *http.Request, id string) error {
	if r.Method != http.MethodPost {
		return notAllowed(w, r, http.MethodPost)
	}
	if err := checkRequestID(id); err != nil {
		return err
	}
	var body rejectBody
	if err := readBody(r, &body); err != nil {
		return err
	}
	req, err := ad.app.reject(r.Context(), id, body.Reason)
	if err != nil {
		return actionErr(err)
	}
	return writeJSON(w, requestInfo(req))
}
