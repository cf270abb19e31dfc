package caddyenroll

import (
	"container/heap"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the administrator's side of enrollment on Caddy's admin
// endpoint, under /enroll/:
//
//	GET  /enroll/pending                pending requests
//	GET  /enroll/requests[?state=S]     all requests (pending, issued, rejected)
//	                                    both a page at a time, in id order: limit=N (default 1000,
//	                                    at most 10000), after=ID (those with a greater id); a
//	                                    Link: <…>; rel="next" header names the next page
//	POST /enroll/approve/ID             issue a pending request ({"group": "…"} places an unknown device)
//	POST /enroll/reject/ID              refuse it ({"reason": "…"})
//	GET  /enroll/devices                devices of the configuration file and their certificates,
//	                                    a page at a time in name order (configfile.DeviceKey): limit=N
//	                                    as above, after=NAME (those whose name sorts after); Link as above
//	POST /enroll/revoke                 {"serial": "…"} or {"device": "…"}, optional "reason" (RFC 5280 code);
//	                                    404 for a device neither in the file nor issued a certificate
//	GET  /enroll/ca[/PROFILE]           the CA certificate (PEM) and SHA-256 fingerprint
//	GET  /enroll/certificates/SERIAL    an issued certificate: record, PEM and a readable dump
//	                                    (by serial here and in revoke: invalid 400, not issued 404,
//	                                    unreadable record 500)
//	GET  /enroll/cdrs[?format=csv]      stored usage records (JSON, or CSV); since=D and until=D
//	                                    (UTC days YYYY-MM-DD, inclusive) export a period
//	DELETE /enroll/cdrs?before=D        delete the records of the UTC days before D (at most tomorrow)
//
// Bodies are read strictly (readBody): unknown or repeated fields, data after the
// object and bodies over 64 KiB are refused, and so is a Content-Type
// other than application/json (what an HTML form can send cross-origin).
type adminAPI struct {
	ctx caddy.Context
	log *zap.Logger
	app *App
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.enroll",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision finds the enroll app, if the config has one. Requests act on
// the running config's app instead (running), when there is one.
func (ad *adminAPI) Provision(ctx caddy.Context) error {
	ad.ctx = ctx
	ad.log = ctx.Logger(ad)
	if app, err := ctx.AppIfConfigured("enroll"); err == nil {
		ad.app = app.(*App)
	}
	return nil
}

// Routes returns the admin routes.
func (ad *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/enroll/", Handler: caddy.AdminHandlerFunc(ad.serve)}}
}

// serve answers an admin request. A request the caller got wrong (4xx) is
// answered here, in the shape Caddy gives errors ({"error": "..."}), and
// logged at info: Caddy logs every error a handler returns at error level,
// which would page an operator for a mistyped request id.
func (ad *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	err := ad.route(w, r)
	var refused caddy.APIError
	if !errors.As(err, &refused) || refused.HTTPStatus < 400 || refused.HTTPStatus >= 500 {
		return err
	}
	if refused.Message == "" && refused.Err != nil {
		refused.Message = refused.Err.Error()
	}
	ad.log.Info("admin request refused", zap.String("method", r.Method), zap.String("uri", r.RequestURI),
		zap.Int("status_code", refused.HTTPStatus), zap.String("error", refused.Message))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(refused.HTTPStatus)
	return json.NewEncoder(w).Encode(refused)
}

// running is the admin API acting on the enroll app of the config Caddy
// runs. Caddy replaces the admin endpoint, and so this module, while it
// provisions a new config, before it knows the config will run: a reload
// that fails keeps the previous config running but leaves the endpoint with
// the module of the failed config, whose enroll app failed (none) or was
// cleaned up without starting. The app found at Provision serves only when
// no config is running (a module provisioned alone, as in unit tests).
func (ad *adminAPI) running() *adminAPI {
	active := caddy.ActiveContext()
	if active.Context == nil {
		return ad
	}
	var running *App
	if app, err := active.AppIfConfigured("enroll"); err == nil {
		running, _ = app.(*App)
	}
	if running == ad.app {
		return ad
	}
	c := *ad
	c.app = running
	return &c
}

func (ad *adminAPI) route(w http.ResponseWriter, r *http.Request) error {
	ad = ad.running()
	if ad.app == nil {
		return apiErr(http.StatusNotFound, errors.New("the enroll app is not configured"))
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/enroll/"), "/"), "/")
	if err := onlyQuery(r, queryParams(parts, r.Method)...); err != nil {
		return err
	}
	switch {
	case len(parts) == 1 && parts[0] == "pending":
		return ad.listRequests(w, r, statePending)
	case len(parts) == 1 && parts[0] == "requests":
		return ad.listRequests(w, r, r.URL.Query().Get("state"))
	case len(parts) == 2 && parts[0] == "approve":
		return ad.approve(w, r, parts[1])
	case len(parts) == 2 && parts[0] == "reject":
		return ad.reject(w, r, parts[1])
	case len(parts) == 1 && parts[0] == "devices":
		return ad.devices(w, r)
	case len(parts) == 1 && parts[0] == "revoke":
		return ad.revoke(w, r)
	case len(parts) == 1 && parts[0] == "unlock":
		return ad.unlock(w, r)
	case len(parts) == 2 && parts[0] == "certificates":
		return ad.certificate(w, r, parts[1])
	case len(parts) == 1 && parts[0] == "cdrs":
		return ad.cdrs(w, r)
	case parts[0] == "ca" && len(parts) <= 2:
		profile := profileModern
		if len(parts) == 2 {
			profile = parts[1]
		}
		return ad.caInfo(w, r, profile)
	}
	return apiErr(http.StatusNotFound, fmt.Errorf("resource not found: %s", r.URL.Path))
}

// queryParams are the query parameters a route takes.
func queryParams(parts []string, method string) []string {
	switch {
	case len(parts) != 1:
	case parts[0] == "pending":
		return []string{"limit", "after"}
	case parts[0] == "requests":
		return []string{"state", "limit", "after"}
	case parts[0] == "devices":
		return []string{"limit", "after"}
	case parts[0] == "cdrs" && method == http.MethodDelete:
		return []string{"before"}
	case parts[0] == "cdrs":
		return []string{"since", "until", "format"}
	}
	return nil
}

// onlyQuery refuses a query parameter the route does not take, or one
// given twice: a mistyped ?sinc= must not export every record.
func onlyQuery(r *http.Request, allowed ...string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(http.StatusBadRequest, fmt.Errorf("query: %v", err))
	}
	for name, values := range q {
		switch {
		case !slices.Contains(allowed, name) && len(allowed) == 0:
			return apiErr(http.StatusBadRequest, fmt.Errorf("%s takes no query parameters (got %q)", r.URL.Path, name))
		case !slices.Contains(allowed, name):
			return apiErr(http.StatusBadRequest, fmt.Errorf("unknown query parameter %q (%s takes %s)", name, r.URL.Path, strings.Join(allowed, ", ")))
		case len(values) > 1:
			return apiErr(http.StatusBadRequest, fmt.Errorf("query parameter %q given %d times", name, len(values)))
		}
	}
	return nil
}

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

// Pages of request and device lists.
const (
	defaultPageLimit = 1000
	maxPageLimit     = 10000
)

// pageQuery reads the optional limit and after of a list: how many items a
// page has at most, and the id after which it starts (the last one of the
// previous page; "" from the first).
func pageQuery(q url.Values) (after string, limit int, err error) {
	if limit, err = pageLimit(q); err != nil {
		return "", 0, err
	}
	after = strings.ToLower(q.Get("after"))
	if len(after) > 32 || strings.Trim(after, "0123456789abcdef") != "" {
		return "", 0, fmt.Errorf("after must be a request id (hex), not %q", q.Get("after"))
	}
	return after, limit, nil
}

// pageLimit reads the optional limit of a list.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return defaultPageLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageLimit {
		return 0, fmt.Errorf("limit must be a number from 1 to %d, not %q", maxPageLimit, v)
	}
	return n, nil
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

// notAllowed refuses r's method (405), naming the route's methods in
// Allow (RFC 9110, 15.5.5).
func notAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiErr(http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: %s (%s takes %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
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

// CertificateInfo is an issued certificate as the admin API shows it.
type CertificateInfo struct {
	Profile     string    `json:"profile"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"sha256"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	IssuedAt    time.Time `json:"issued_at,omitzero"` // when it was signed (NotBefore is backdated); zero in records of earlier versions
	Revoked     bool      `json:"revoked"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	Reason      int       `json:"reason,omitempty"`
}

// certificateBefore orders a device's certificates as they were signed.
func certificateBefore(x, y *CertificateInfo) bool {
	return ca.SignedBefore(x.IssuedAt, x.NotBefore, y.IssuedAt, y.NotBefore)
}

func certificateInfo(profile string, rec *ca.Record) CertificateInfo {
	return CertificateInfo{Profile: profile, Serial: rec.Serial, Fingerprint: rec.Fingerprint,
		NotBefore: rec.NotBefore, NotAfter: rec.NotAfter, IssuedAt: rec.IssuedAt, Revoked: rec.Revoked, RevokedAt: rec.RevokedAt, Reason: rec.Reason}
}

// DeviceInfo is a device of the configuration file with its certificates.
type DeviceInfo struct {
	Name         string            `json:"name"`
	Group        string            `json:"group"`
	Enabled      bool              `json:"enabled"`
	Enrolled     bool              `json:"enrolled"`
	Certificates []CertificateInfo `json:"certificates"`
}

// devices answers a page of the file's devices with their certificates,
// in the order of their names (configfile.DeviceKey), as a JSON array; the
// Link header names the next page as listRequests does. A device's
// certificates take a storage read per CA: a page costs reads for its
// devices only (listing a carrier's 100,000 devices whole took seconds).
func (ad *adminAPI) devices(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	after := q.Get("after")
	if len(after) > 255 {
		return apiErr(http.StatusBadRequest, fmt.Errorf("after must be a device name, not %d bytes", len(after)))
	}
	after = configfile.DeviceKey(after)
	// the limit+1 first names after after (one more tells whether more
	// follow), kept in a heap: no sort of the whole file per page
	var page devicePage
	ad.app.cfg.read(func(f *configfile.File) {
		for i := range f.Devices {
			d := &f.Devices[i]
			k := configfile.DeviceKey(d.Name)
			if k <= after || len(page) > limit && k >= page[0].key {
				continue
			}
			e := pageEntry{k, DeviceInfo{Name: d.Name, Group: d.Group, Enabled: d.Enabled, Enrolled: d.Enrolled}}
			if len(page) > limit {
				page[0] = e
				heap.Fix(&page, 0)
			} else {
				heap.Push(&page, e)
			}
		}
	})
	slices.SortFunc(page, func(x, y pageEntry) int { return strings.Compare(x.key, y.key) })
	more := len(page) > limit
	page = page[:min(len(page), limit)]
	out := make([]DeviceInfo, len(page))
	for i := range page {
		out[i] = page[i].DeviceInfo
		out[i].Certificates = []CertificateInfo{}
	}
	// each device's certificates from its index: those of devices the
	// file lists, up to deviceIndexRetention after they expired
	for profile, c := range ad.app.cas {
		for i := range out {
			recs, err := c.Records(r.Context(), out[i].Name)
			if errors.Is(err, ca.ErrBadDeviceName) {
				continue // a name no CA would certify
			}
			if err != nil {
				return apiErr(http.StatusInternalServerError, err)
			}
			for _, rec := range recs {
				out[i].Certificates = append(out[i].Certificates, certificateInfo(profile, &rec))
			}
		}
	}
	for i := range out {
		sort.SliceStable(out[i].Certificates, func(a, b int) bool {
			return certificateBefore(&out[i].Certificates[a], &out[i].Certificates[b])
		})
	}
	if more {
		next := url.Values{"after": {page[len(page)-1].key}, "limit": {strconv.Itoa(limit)}}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	return writeJSON(w, out)
}

// devicePage is a max-heap of devices by name (configfile.DeviceKey): the
// first names of the list, the greatest on top.
type devicePage []pageEntry

type pageEntry struct {
	key string
	DeviceInfo
}

func (p devicePage) Len() int           { return len(p) }
func (p devicePage) Less(i, j int) bool { return p[i].key > p[j].key }
func (p devicePage) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }
func (p *devicePage) Push(x any)        { *p = append(*p, x.(pageEntry)) }
func (p *devicePage) Pop() any {
	old := *p
	e := old[len(old)-1]
	*p = old[:len(old)-1]
	return e
}

type revokeBody struct {
	Serial string `json:"serial,omitempty"`
	Device string `json:"device,omitempty"`
	Reason *int   `json:"reason,omitempty"`
	// ForgetIDs (with Device) also forgets the device and customer ids
	// the device first enrolled with, so that its next enrollment records
	// new ones: a device another account enrolled first (trust on first
	// use), or one whose ids changed.
	ForgetIDs bool `json:"forget_ids,omitempty"`
}

// revoke answers POST /enroll/revoke: it revokes the certificate of a
// serial, or every certificate of a device (and clears its enrolled flag),
// under the device's lock; with forget_ids it forgets the device's ids, and
// with reason key compromise it revokes every other certificate of the
// keys. It goes on if the client hangs up: once begun, it is done.
func (ad *adminAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return notAllowed(w, r, http.MethodPost)
	}
	body, reason, err := readRevokeBody(r)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context()) // once begun, done
	device, hits, err := ad.revokeTarget(ctx, body)
	if err != nil {
		return err
	}
	if body.Device != "" {
		// by the name its certificates and lock have: the file is
		// searched with it too ("[gw1.example]" names no device there)
		body.Device = device
	}
	// under the device's lock, as issuance: a certificate issued meanwhile
	// is either revoked here or issued after
	unlock, err := ad.app.state.lockDevice(ctx, device)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	revoked, newly, deferred, err := ad.revokeLocked(ctx, body, hits, reason)
	if err == nil {
		ad.app.noteCurrent(ctx, device) // at once, here and in the configs sharing its CAs
	}
	forgot := false
	if err == nil && body.ForgetIDs {
		// by the file's spelling, as enrollment reads the record: one not
		// in normal form has a copy where earlier versions keep it
		if forgot, err = ad.app.state.forgetIDs(ctx, ad.app.fileName(device)); err != nil {
			metrics.revoked.Add(float64(newly))
			err = apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s revoked (%s), but its ids are not forgotten: %w",
				device, strings.Join(revoked, ", "), err))
		} else if forgot {
			ad.log.Info("device ids forgotten", zap.String("device", device))
		}
	}
	unlock() // not held through the refresh and the answer
	if err != nil {
		return err
	}
	if reason == ca.ReasonKeyCompromise {
		// the key is leaked whichever device holds a certificate of it
		byName := ""
		if body.Device != "" {
			byName = device
		}
		more, n, err := ad.revokeSameKeys(ctx, byName, revoked)
		revoked, newly = append(revoked, more...), newly+n
		if err != nil {
			metrics.revoked.Add(float64(newly))
			return apiErr(http.StatusInternalServerError, fmt.Errorf("certificates %s revoked, but not every other certificate of their keys: %w",
				strings.Join(revoked, ", "), err))
		}
	}
	metrics.revoked.Add(float64(newly))
	// done even if the client hangs up: the revocation is stored already
	if err := ad.app.refreshRevoked(ctx); err != nil {
		ad.log.Error("refreshing revocations", zap.Error(err))
	}
	if revoked == nil {
		revoked = []string{}
	}
	answer := map[string]any{"revoked": revoked}
	if body.ForgetIDs {
		answer["ids_forgotten"] = forgot
	}
	if deferred != nil {
		answer["note"] = ad.waitNote(body.Device, "marked not enrolled", deferred)
	}
	return writeJSON(w, answer)
}

// revokeTarget finds what a revoke names: by serial, its issuance records
// (hits) and their device; by device, the device's name in normal form (the
// name issuance locks). A device of the file that no certificate can name
// ('GW 1', identified by its source_address) keeps its name: it has only
// its flag to clear. The error is the API's answer.
func (ad *adminAPI) revokeTarget(ctx context.Context, body revokeBody) (device string, hits []revocationHit, err error) {
	if body.Serial != "" {
		if hits, err = ad.lookupSerial(ctx, body.Serial); err != nil {
			return "", nil, err
		}
		return hits[0].rec.Device, hits, nil
	}
	name, _, err := ca.NormalizeDevice(body.Device)
	switch {
	case err == nil:
		return name, nil, nil
	case !ad.app.cfg.device(body.Device).Known:
		return "", nil, apiErr(http.StatusBadRequest, err)
	}
	return body.Device, nil, nil
}

// readRevokeBody reads and checks a revoke's body, and returns it with its
// reason (0, unspecified, when it gives none). The error is the API's
// answer.
func readRevokeBody(r *http.Request) (body revokeBody, reason int, err error) {
	if err := readBody(r, &body); err != nil {
		return body, 0, err
	}
	if (body.Serial == "") == (body.Device == "") {
		return body, 0, apiErr(http.StatusBadRequest, errors.New("give exactly one of serial or device"))
	}
	if body.ForgetIDs && body.Device == "" {
		return body, 0, apiErr(http.StatusBadRequest, errors.New("forget_ids needs device"))
	}
	if body.Reason != nil {
		reason = *body.Reason
		if _, err := ca.ParseReason(strconv.Itoa(reason)); err != nil {
			return body, 0, apiErr(http.StatusBadRequest, err)
		}
	}
	return body, reason, nil
}

// revokeSameKeys revokes for key compromise the certificates of other
// devices (cloned gateways) with the public key of one of serials, just
// revoked for key compromise: its marker keeps the key from enrolling
// again, but a certificate already issued for it would still identify its
// device to whoever stole the key (OSP, the client certificate verifier).
// Each is revoked under its device's lock, as issuance revokes. It reads
// every issuance record of every CA: key compromise is rare. A device
// revoked by name (device, else "") counts with the keys of its
// certificates revoked for key compromise before, which serials leaves out
// (RevokeDevice returns none of them): revoked so by an earlier version, or
// by a revocation whose revocation of the other certificates failed, which
// the operator repeats. It returns the serials revoked (those revoked
// before for another reason included, as revokeLocked lists them) and how
// many were not revoked before.
func (ad *adminAPI) revokeSameKeys(ctx context.Context, device string, serials []string) (revoked []string, newly int, err error) {
	keys := make(map[string]bool)
	for _, c := range ad.app.cas {
		for _, s := range serials {
			if rec, err := c.Lookup(ctx, s); err == nil {
				keys[rec.PublicKeySHA256] = true
			} else if !errors.Is(err, ca.ErrNotFound) {
				return nil, 0, fmt.Errorf("looking up serial %s: %w", s, err)
			}
		}
	}
	all := make(map[string][]ca.Record, len(ad.app.cas))
	for profile, c := range ad.app.cas {
		recs, err := c.Records(ctx, "")
		if err != nil {
			return revoked, newly, fmt.Errorf("certificates of the %s CA: %w", profile, err)
		}
		all[profile] = recs
		for _, r := range recs {
			if device != "" && r.Revoked && r.Reason == ca.ReasonKeyCompromise && r.PublicKeySHA256 != "" &&
				configfile.DeviceKey(r.Device) == configfile.DeviceKey(device) {
				keys[r.PublicKeySHA256] = true
			}
		}
	}
	for profile, recs := range all {
		c := ad.app.cas[profile]
		for _, r := range recs {
			if !keys[r.PublicKeySHA256] || slices.Contains(serials, r.Serial) || r.Revoked && r.Reason == ca.ReasonKeyCompromise {
				continue
			}
			unlock, err := ad.app.state.lockDevice(ctx, r.Device)
			if err != nil {
				return revoked, newly, err // it names the device
			}
			// r was read before the lock: a revocation racing this one
			// (another operator's, an issuance's check of the key) may
			// have revoked it since, and counted it; RevokeSerial tells
			fresh, err := c.RevokeSerial(ctx, r.Serial, ca.ReasonKeyCompromise)
			if err == nil {
				ad.app.noteRevoked(profile, "", []string{r.Serial}, false)
				ad.app.noteCurrent(ctx, r.Device)
			}
			unlock()
			if err != nil {
				return revoked, newly, fmt.Errorf("revoking %s of %s: %w", r.Serial, r.Device, err)
			}
			revoked = append(revoked, r.Serial)
			if fresh {
				newly++
			}
			ad.log.Info("certificate of a compromised key revoked", zap.String("serial", r.Serial),
				zap.String("device", r.Device), zap.String("profile", profile))
		}
	}
	return revoked, newly, nil
}

// revocationHit is a certificate a revoke by serial found, by profile.
type revocationHit struct {
	profile string
	rec     *ca.Record
}

// lookupSerial finds the issuance records of serial, by profile (in
// profile order). An invalid serial is 400 and one no CA issued 404; a
// record that storage fails to read, or that does not decode, is 500: the
// certificate may well exist.
func (ad *adminAPI) lookupSerial(ctx context.Context, serial string) ([]revocationHit, error) {
	if _, err := ca.NormalizeSerial(serial); err != nil {
		return nil, apiErr(http.StatusBadRequest, err)
	}
	var hits []revocationHit
	for profile, c := range ad.app.cas {
		rec, err := c.Lookup(ctx, serial)
		switch {
		case errors.Is(err, ca.ErrNotFound):
		case err != nil:
			return nil, apiErr(http.StatusInternalServerError, fmt.Errorf("looking up serial %s (%s CA): %v", serial, profile, err))
		case rec != nil:
			hits = append(hits, revocationHit{profile, rec})
		}
	}
	if len(hits) == 0 {
		return nil, apiErr(http.StatusNotFound, fmt.Errorf("no certificate with serial %s", serial))
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].profile < hits[j].profile })
	return hits, nil
}

// revokeLocked revokes what body names, under the device's lock, and
// unmarks a device revoked by name. A name that is neither a device of
// the file nor has any certificate is refused (404): a typo. It returns the
// serials revoked, how many of them were not revoked before and, when the
// unmark waits in storage for the file (deferMark), why (else nil).
func (ad *adminAPI) revokeLocked(ctx context.Context, body revokeBody, hits []revocationHit, reason int) (revoked []string, newly int, deferred error, err error) {
	for _, h := range hits {
		// h.rec was read before the device's lock: another revocation of
		// it meanwhile counted it already
		fresh, err := ad.app.cas[h.profile].RevokeSerial(ctx, body.Serial, reason)
		if err != nil {
			return nil, 0, nil, apiErr(http.StatusInternalServerError, err)
		}
		ad.app.noteRevoked(h.profile, "", []string{h.rec.Serial}, false)
		revoked = append(revoked, h.rec.Serial)
		if fresh {
			newly++
		}
		ad.log.Info("certificate revoked", zap.String("serial", h.rec.Serial), zap.String("profile", h.profile))
	}
	if body.Device == "" {
		return revoked, newly, nil, nil
	}
	// the device's records, by profile: read once, when needed to tell a
	// mistyped name (neither in the file nor issued a certificate: 404) or
	// the revoked certificates whose reason key compromise changes
	d := ad.app.cfg.device(body.Device)
	_, _, badName := ca.NormalizeDevice(body.Device) // no CA has certified it (revoke refused it unless d.Known)
	var recs map[string][]ca.Record
	if badName == nil && (!d.Known || reason == ca.ReasonKeyCompromise) {
		recs = make(map[string][]ca.Record, len(ad.app.cas))
		issued := false
		for profile, c := range ad.app.cas {
			r, err := c.Records(ctx, body.Device)
			if err != nil {
				return nil, 0, nil, apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s (%s CA): %v", body.Device, profile, err))
			}
			recs[profile] = r
			issued = issued || len(r) > 0
		}
		if !d.Known && !issued {
			return nil, 0, nil, apiErr(http.StatusNotFound, fmt.Errorf("no device %s: it is not in the configuration file %s and no certificate was issued to it",
				body.Device, ad.app.ConfigFile))
		}
	}
	cas := ad.app.cas
	if badName != nil {
		cas = nil // a name no CA certifies: no certificate to revoke
	}
	for profile, c := range cas {
		// for key compromise, revoked certificates change their reason:
		// listed in the answer (as a revoke by serial lists them), not
		// counted as newly revoked
		var rereasoned []string
		if reason == ca.ReasonKeyCompromise {
			for _, r := range recs[profile] {
				if r.Revoked && r.Reason != ca.ReasonKeyCompromise {
					rereasoned = append(rereasoned, r.Serial)
				}
			}
		}
		serials, err := c.RevokeDevice(ctx, body.Device, reason, "")
		if err != nil {
			return nil, 0, nil, apiErr(http.StatusInternalServerError, err)
		}
		ad.app.noteRevoked(profile, "", serials, false)
		revoked = append(append(revoked, serials...), rereasoned...)
		newly += len(serials)
	}
	deferred, err = ad.unmarkRevoked(ctx, body.Device, d)
	if err != nil {
		// the revocation stands: say so, lest the operator take the
		// whole request as failed
		return nil, 0, nil, apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s revoked (%s), but its enrolled flag is still set: %w",
			body.Device, strings.Join(revoked, ", "), err))
	}
	ad.log.Info("device certificates revoked", zap.String("device", body.Device), zap.Strings("serials", revoked))
	return revoked, newly, deferred, nil
}

// unmarkRevoked clears the enrolled flag of a device whose certificates
// were revoked by name (d is the device as the version in force has it): a
// device without a valid certificate is not enrolled any more. While the
// file cannot be edited the flag is cleared once it can (the revocation
// keeps the device out of routes meanwhile): deferred is then why. The flag
// is read in the version the edit parses, not the one in force: another
// instance sharing the file may have marked the device (or added it,
// approved) since this one last reloaded it.
func (ad *adminAPI) unmarkRevoked(ctx context.Context, device string, d deviceInfo) (deferred, err error) {
	if !d.Enrolled && ad.app.cfg.current() {
		return nil, nil
	}
	name := d.Name
	err = ad.app.cfg.editSettled(ctx, func(f *configfile.File) error {
		if fd, ok := f.Device(device); ok {
			name = fd.Name
		}
		outcome, err := markIn(f, mark{Device: device, Unmark: true})
		if err == nil && outcome != markWritten {
			return errNothingToWrite
		}
		return err
	})
	switch {
	case errors.Is(err, errNothingToWrite):
		return nil, nil
	case errors.Is(err, errFileUnavailable):
		return err, ad.app.deferMark(ctx, mark{Device: name, Unmark: true}, err)
	}
	return nil, err
}

func (ad *adminAPI) cdrs(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
		return ad.exportCDRs(w, r)
	case http.MethodDelete:
		return ad.purgeCDRs(w, r)
	}
	return notAllowed(w, r, http.MethodGet, http.MethodDelete)
}

// cdrRangeQuery reads the optional since and until days of an export.
func cdrRangeQuery(q url.Values) (dayRange, error) {
	var rg dayRange
	for _, p := range []struct {
		name string
		day  *time.Time
	}{{"since", &rg.since}, {"until", &rg.until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		d, err := parseDay(v)
		if err != nil {
			return dayRange{}, fmt.Errorf("%s: %v", p.name, err)
		}
		if d.IsZero() { // the open bound: until=0001-01-01 would export every record
			return dayRange{}, fmt.Errorf("%s: %q is too early (the earliest day is 0001-01-02)", p.name, v)
		}
		*p.day = d
	}
	if !rg.since.IsZero() && !rg.until.IsZero() && rg.since.After(rg.until) {
		return dayRange{}, fmt.Errorf("since %s is after until %s", q.Get("since"), q.Get("until"))
	}
	return rg, nil
}

// cdrPurgeQuery reads the required before day of a purge. A day later than
// tomorrow (UTC) is refused: it would delete records of days not over yet,
// today's or later, which a typo must not do. Today is refused in the first
// cdrMidnightWindow after midnight: a record received just before it may
// still be being written (or its retry deduplicated against it), and an
// export made at midnight would not hold it (tomorrow, which deletes
// today's records too, is meant as such).
func cdrPurgeQuery(q url.Values, now time.Time) (time.Time, error) {
	v := q.Get("before")
	if v == "" {
		return time.Time{}, errors.New("before is required: records of the UTC days before it (YYYY-MM-DD) are deleted")
	}
	before, err := parseDay(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("before: %v", err)
	}
	if tomorrow := utcDay(now).AddDate(0, 0, 1); before.After(tomorrow) {
		return time.Time{}, fmt.Errorf("before %s is later than tomorrow (%s UTC): refusing a purge that reaches past today",
			v, tomorrow.Format(cdrDayLayout))
	}
	if today := utcDay(now); before.Equal(today) && now.Sub(today) < cdrMidnightWindow {
		return time.Time{}, fmt.Errorf("before %s: yesterday's records may still be arriving until %s UTC; purge then (export first)",
			v, today.Add(cdrMidnightWindow).Format("15:04"))
	}
	return before, nil
}

func (ad *adminAPI) exportCDRs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return apiErr(http.StatusBadRequest, fmt.Errorf("format must be json or csv, not %q", format))
	}
	rg, err := cdrRangeQuery(q)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	// streamed, a day at a time: a failure after the first bytes can only
	// cut the answer short (and is logged)
	out := &countingWriter{w: w}
	var write func(CDR) error
	var finish func() error
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		cw, err := newCDRCSV(out)
		if err != nil {
			return err
		}
		write, finish = cw.write, cw.flush
	} else {
		w.Header().Set("Content-Type", "application/json")
		n := 0
		write = func(c CDR) error {
			b, err := json.MarshalIndent(cdrExport{strconv.FormatUint(c.TransactionID, 10), c}, "  ", "  ")
			if err != nil {
				return err
			}
			sep := ",\n  "
			if n == 0 {
				sep = "[\n  "
			}
			n++
			_, err = out.Write(append([]byte(sep), b...))
			return err
		}
		finish = func() error {
			end := "\n]\n"
			if n == 0 {
				end = "[]\n"
			}
			_, err := io.WriteString(out, end)
			return err
		}
	}
	err = ad.app.eachCDR(r.Context(), rg, write)
	if err == nil {
		err = finish()
	}
	if err != nil && out.n == 0 {
		return apiErr(http.StatusInternalServerError, err)
	}
	if err != nil {
		// the status is sent: break the connection, so that no client
		// (nor caddy enroll cdrs) takes a cut export for a whole one
		ad.log.Error("exporting call detail records: answer cut short", zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (ad *adminAPI) purgeCDRs(w http.ResponseWriter, r *http.Request) error {
	// it takes no body: one with fields is a mistake, refused before
	// anything is deleted, as on the other routes
	if err := readBody(r, &struct{}{}); err != nil {
		return err
	}
	before, err := cdrPurgeQuery(r.URL.Query(), ad.app.state.now())
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	res, err := ad.app.purgeCDRs(r.Context(), before)
	fields := []zap.Field{zap.String("before", before.Format(cdrDayLayout)), zap.Strings("days", res.DeletedDays),
		zap.Int("days_deleted", len(res.DeletedDays)), zap.Int("legacy_records_deleted", res.DeletedLegacyRecords)}
	if err != nil {
		ad.log.Error("purging call detail records", append(fields, zap.Error(err))...)
		return apiErr(http.StatusInternalServerError, err)
	}
	ad.log.Info("call detail records purged", fields...)
	return writeJSON(w, res)
}

// IssuedCertificate is an issued certificate as the admin API shows it.
type IssuedCertificate struct {
	Device string `json:"device"`
	CertificateInfo
	Certificate string `json:"certificate_pem"`
	// The certificate in human-readable form.
	Text string `json:"text"`
}

func (ad *adminAPI) certificate(w http.ResponseWriter, r *http.Request, serial string) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	hits, err := ad.lookupSerial(r.Context(), serial)
	if err != nil {
		return err
	}
	rec := hits[0].rec
	text, err := ca.Describe(rec.DER)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	return writeJSON(w, IssuedCertificate{Device: rec.Device, CertificateInfo: certificateInfo(hits[0].profile, rec),
		Certificate: string(rec.PEM()), Text: text})
}

// CAInfo describes an operational CA.
type CAInfo struct {
	Profile     string `json:"profile"`
	Crypto      string `json:"crypto"`
	Subject     string `json:"subject"`
	Fingerprint string `json:"sha256_fingerprint"`
	// Hex MD5 of the certificate, no colons: what the OSP Toolkit's
	// `enroll -fprint` compares (legacy profile only).
	MD5Fingerprint string `json:"md5_fingerprint,omitempty"`
	// When the CA stops issuing: the first end in its chain (with an
	// intermediate, the intermediate's if it ends first).
	NotAfter    string `json:"not_after"`
	Certificate string `json:"certificate_pem"`
	// The certificate in human-readable form.
	Text string `json:"text"`
}

func (ad *adminAPI) caInfo(w http.ResponseWriter, r *http.Request, profile string) error {
	if r.Method != http.MethodGet {
		return notAllowed(w, r, http.MethodGet)
	}
	c, err := ad.app.authority(profile)
	if err != nil {
		return apiErr(http.StatusNotFound, err)
	}
	root := c.Root()
	text, err := ca.Describe(root.Raw)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	md5Hex := ""
	if profile == profileLegacy {
		sum := md5.Sum(root.Raw)
		md5Hex = strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	return writeJSON(w, CAInfo{
		MD5Fingerprint: md5Hex,
		Profile:        profile, Crypto: c.CryptoParam(), Subject: root.Subject.String(),
		Fingerprint: ca.Fingerprint(root.Raw), NotAfter: caEnd(c).UTC().Format(time.RFC3339),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})),
		Text:        text,
	})
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func apiErr(code int, err error) error {
	return caddy.APIError{HTTPStatus: code, Err: err}
}

func actionErr(err error) error {
	switch {
	case errors.Is(err, errNotFound):
		return apiErr(http.StatusNotFound, err)
	case errors.Is(err, errConflict):
		return apiErr(http.StatusConflict, err)
	case errors.Is(err, errBadRequest):
		return apiErr(http.StatusBadRequest, err)
	}
	return apiErr(http.StatusInternalServerError, err)
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
