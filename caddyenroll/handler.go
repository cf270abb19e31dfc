package caddyenroll

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the seed's device enrollment protocol (operation=getcacert,
// request, retrieve as form variables in an HTTP POST) for one site, using
// the CA of its profile from the `enroll` app. Other methods fall through to
// the next handler, except GET and HEAD of `…/ca.crl` (the CA's CRL, DER)
// and `…/ca.crt` (the CA certificate, DER).
type Handler struct {
	// CA profile of this site: "modern" (default) or "legacy" (MD5-RSA CA
	// for seed-era devices such as the OSP Toolkit's enroll client).
	Profile string `json:"profile,omitempty"`

	// Content-Type of answers: "text/html" (default, as the claims state)
	// or "text/plain" (as Table 3 shows).
	ContentType string `json:"content_type,omitempty"`

	// Answer getcacert (and GET /ca.crt and /ca.crl), and only these, over
	// plain HTTP even when the configuration file says `ssl enabled`. The
	// CA certificate is public; devices check its fingerprint out of band.
	PlainGetCACert bool `json:"plain_getcacert,omitempty"`

	// Largest request body accepted, in bytes: 1024 to 65536 (64 KiB, the
	// protocol's bound, wire.MaxBody; a larger value, up to 1 MiB as
	// earlier versions took, is lowered to it with a warning). Default
	// 64 KiB (also for 0).
	MaxBody int64 `json:"max_body,omitempty"`

	app          *App
	log          *zap.Logger
	refusals     *logThrottle // the refusals any client can cause (logthrottle.go)
	caCertAnswer []byte       // the getcacert answer, encoded once
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.enroll",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the shared app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.refusals = newLogThrottle()
	if h.Profile == "" {
		h.Profile = profileModern
	}
	if h.ContentType == "" {
		h.ContentType = "text/html"
	}
	if h.MaxBody == 0 {
		h.MaxBody = wire.MaxBody
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if h.MaxBody > wire.MaxBody {
		// earlier versions took up to 1 MiB; the decoder never did
		h.log.Warn("max_body is more than the protocol's bound; using the bound",
			zap.Int64("max_body", h.MaxBody), zap.Int("bound", wire.MaxBody))
		h.MaxBody = wire.MaxBody
	}
	appIface, err := ctx.App("enroll")
	if err != nil {
		return fmt.Errorf("getting enroll app: %v", err)
	}
	h.app = appIface.(*App)
	c, err := h.app.authority(h.Profile)
	if err != nil {
		return err
	}
	h.caCertAnswer = wire.AppendResponse(nil, wire.Response{Status: wire.StatusOK, Certificate: c.Root().Raw})
	return nil
}

// Cleanup writes the refusal lines' summaries still due while the
// config's logger writes (logthrottle.go).
func (h *Handler) Cleanup() error {
	h.refusals.flush()
	return nil
}

// Validate checks the handler's settings.
func (h *Handler) Validate() error {
	if h.Profile != profileModern && h.Profile != profileLegacy {
		return fmt.Errorf("profile must be %q or %q, not %q", profileModern, profileLegacy, h.Profile)
	}
	switch h.ContentType {
	case "text/html", "text/plain":
	default:
		return fmt.Errorf("content_type must be text/html or text/plain, not %q", h.ContentType)
	}
	if h.MaxBody < 1024 || h.MaxBody > 1<<20 {
		return fmt.Errorf("max_body must be between 1 KiB and 64 KiB (1 MiB is lowered to 64 KiB), not %d", h.MaxBody)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodHead:
		return h.serveGet(w, r, next)
	default:
		return next.ServeHTTP(w, r)
	}

	start := time.Now()
	if r.ContentLength > h.MaxBody {
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes exceeds %d", r.ContentLength, h.MaxBody))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, timeBody(w, r, start), h.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", h.MaxBody))
		}
		if isBodyTooSlow(err) {
			return bodyTooSlow(w)
		}
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading body: %v", err))
	}
	clientIP := clientAddr(r)
	if isGetCACert(body) && (r.TLS != nil || h.PlainGetCACert || !h.app.cfg.flags().SSL) {
		// the hot path: a constant answer
		metrics.requests.WithLabelValues(h.Profile, wire.OpGetCACert, "0").Inc()
		if ce := h.log.Check(zap.DebugLevel, "enrollment answered"); ce != nil {
			ce.Write(zap.String("operation", wire.OpGetCACert), zap.String("client", clientIP))
		}
		return h.writeRaw(w, h.caCertAnswer)
	}
	req, derr := wire.DecodeRequest(body)
	var o outcome
	op := "invalid"
	switch {
	case derr != nil && r.TLS == nil && h.app.cfg.flags().SSL:
		// refused for the transport whatever the body: what a client
		// must fix first (a getcacert allowed over plain HTTP parses)
		o = fail(wire.StatusSSLRequired, "ssl is enabled: use HTTPS")
	case derr != nil:
		o = fail(wire.StatusForError(derr), derr.Error())
	default:
		op = req.Operation
		switch req.Operation {
		case wire.OpGetCACert:
			o = h.getCACert(r)
		case wire.OpRequest, wire.OpRetrieve:
			o = h.app.enroll(r.Context(), enrollInput{op: req.Operation, profile: h.Profile, tls: r.TLS != nil, clientIP: clientIP, req: req})
			if o.gone {
				// it hung up while waiting: nothing was decided, nobody reads an answer
				if ce := h.log.Check(zap.DebugLevel, "enrollment abandoned by the client"); ce != nil {
					ce.Write(zap.String("operation", req.Operation), zap.String("client", clientIP), zap.String("device", o.device))
				}
				return nil
			}
		default:
			o = fail(wire.StatusUnsupportedOperation, "unsupported operation")
		}
	}
	metrics.requests.WithLabelValues(h.Profile, op, strconv.Itoa(o.resp.Status)).Inc()
	h.logAnswer(r, op, req, o, clientIP, start)
	return h.writeAnswer(w, o.resp)
}

// serveGet answers GET and HEAD of `…/ca.crl` and `…/ca.crt`; other paths
// go to next.
func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	crl, crt := strings.HasSuffix(r.URL.Path, "/ca.crl"), strings.HasSuffix(r.URL.Path, "/ca.crt")
	if (crl || crt) && r.TLS == nil && !h.PlainGetCACert && h.app.cfg.flags().SSL {
		// `ssl enabled` refuses every request that did not come over TLS
		return caddyhttp.Error(http.StatusForbidden, errors.New("ssl is enabled: use HTTPS"))
	}
	switch {
	case crl:
		return h.serveCRL(w, r)
	case crt:
		c, _ := h.app.authority(h.Profile) // Provision made sure it is there
		return writeBinary(w, r, "application/pkix-cert", c.Root().Raw)
	}
	return next.ServeHTTP(w, r)
}

// logAnswer writes the one log line of an answered request or retrieve
// (req nil when the body did not decode): refusals at info, as answers,
// except the attempts a lockout refuses, at debug; those any client can
// cause are throttled (logthrottle.go).
func (h *Handler) logAnswer(r *http.Request, op string, req *wire.Request, o outcome, clientIP string, start time.Time) {
	fields := []zap.Field{
		zap.String("operation", op),
		zap.String("profile", h.Profile),
		zap.Int("status", o.resp.Status),
		zap.String("client", clientIP),
		zap.Bool("tls", r.TLS != nil),
		zap.Duration("duration", time.Since(start)),
	}
	if req != nil && req.Username != "" {
		fields = append(fields, h.app.accounts.logField(req.Username))
	}
	if o.device != "" {
		fields = append(fields, zap.String("device", o.device))
	}
	if o.reqID != "" {
		fields = append(fields, zap.String("request", o.reqID))
	}
	if o.serial != "" {
		fields = append(fields, zap.String("serial", o.serial))
	}
	if o.reason != "" {
		fields = append(fields, zap.String("reason", o.reason))
	}
	switch {
	case o.resp.Status == wire.StatusRateLimited:
		// one line per attempt a lockout refuses would let anyone flood
		// the log; the lockout itself is logged when it starts
		if ce := h.log.Check(zap.DebugLevel, "enrollment refused"); ce != nil {
			ce.Write(fields...)
		}
	case throttledStatus(o.resp.Status):
		h.refusals.write(h.log, "enrollment refused: status "+strconv.Itoa(o.resp.Status), zap.InfoLevel, "enrollment refused", fields...)
	case o.resp.Status >= 2:
		h.log.Info("enrollment refused", fields...)
	default:
		h.log.Info("enrollment answered", fields...)
	}
}

// throttledStatus reports whether the refusals of status are logged
// throttled: those a client gets without a password (a malformed body,
// bad credentials, enrollment disabled, plain HTTP, an unknown operation).
func throttledStatus(status int) bool {
	switch status {
	case wire.StatusBadRequest, wire.StatusBadCredentials, wire.StatusEnrollmentDisabled,
		wire.StatusSSLRequired, wire.StatusUnsupportedOperation:
		return true
	}
	return false
}

func (h *Handler) getCACert(r *http.Request) outcome {
	if r.TLS == nil && !h.PlainGetCACert && h.app.cfg.flags().SSL {
		return fail(wire.StatusSSLRequired, "ssl is enabled: use HTTPS")
	}
	c, err := h.app.authority(h.Profile)
	if err != nil {
		return fail(wire.StatusServerError, "server error")
	}
	return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: c.Root().Raw}}
}

// writeAnswer writes a protocol answer the way every known client reads
// it: HTTP 200, Content-Length, never chunked or compressed, ending in "\n".
func (h *Handler) writeAnswer(w http.ResponseWriter, resp wire.Response) error {
	return h.writeRaw(w, wire.AppendResponse(make([]byte, 0, 1024), resp))
}

func (h *Handler) writeRaw(w http.ResponseWriter, buf []byte) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeFixed(w, false, h.ContentType, buf)
}

func (h *Handler) serveCRL(w http.ResponseWriter, r *http.Request) error {
	c, err := h.app.authority(h.Profile)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	// served again from memory for a while: logged that often
	crl, err := c.CachedCRL(r.Context())
	switch {
	case errors.Is(err, ca.ErrCRLNotRenewed):
		h.log.Warn("CRL not renewed; serving the stored one", zap.String("profile", h.Profile), zap.Error(err))
	case errors.Is(err, ca.ErrCRLNotStored):
		h.log.Error("CRL not stored; serving one signed in memory", zap.String("profile", h.Profile), zap.Error(err))
	case err != nil:
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("building CRL: %v", err))
	}
	return writeBinary(w, r, "application/pkix-crl", crl)
}

func writeBinary(w http.ResponseWriter, r *http.Request, ctype string, b []byte) error {
	return writeFixed(w, r.Method == http.MethodHead, ctype, b)
}

// writeFixed answers 200 with a body of known length: Content-Length set,
// so never chunked, and never compressed (seed-era clients and the OSP
// Toolkit read bodies by Content-Length only): Cache-Control no-transform
// keeps an `encode` handler of the site from compressing it. head omits
// the body. A client that hung up before reading the answer is not a server
// error (Caddy would log one, and count a 500): the write's error is
// dropped, as Caddy's respond does.
func writeFixed(w http.ResponseWriter, head bool, ctype string, body []byte) error {
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Del("Content-Encoding")
	if cc := hdr.Get("Cache-Control"); cc == "" {
		hdr.Set("Cache-Control", "no-transform")
	} else {
		hdr.Set("Cache-Control", cc+", no-transform")
	}
	w.WriteHeader(http.StatusOK)
	if head {
		return nil
	}
	_, _ = w.Write(body)
	return nil
}

// isGetCACert reports whether body is exactly a getcacert request, as every
// known client sends it.
func isGetCACert(body []byte) bool {
	b := body
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b) == "operation=getcacert"
}

// clientAddr is the client's IP as Caddy determined it (trusted proxies
// honoured), else the connection's remote address.
func clientAddr(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
