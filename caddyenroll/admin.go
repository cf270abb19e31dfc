package caddyenroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
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

// notAllowed refuses r's method (405), naming the route's methods in
// Allow (RFC 9110, 15.5.5).
func notAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return apiErr(http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: %s (%s takes %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
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
