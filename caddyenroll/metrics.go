package caddyenroll

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are process-wide so that counters survive config reloads; each
// new config's registry gets the same collectors.
var metrics = struct {
	once       sync.Once
	requests   *prometheus.CounterVec
	issued     *prometheus.CounterVec
	pending    prometheus.Gauge
	revoked    prometheus.Counter
	authz      *prometheus.CounterVec
	dests      prometheus.Counter
	usage      *prometheus.CounterVec
	ospRefused *prometheus.CounterVec
	caNotAfter *prometheus.GaugeVec
	lockouts   *prometheus.CounterVec
	loginsShed prometheus.Counter
	collector  []prometheus.Collector
}{}

func initMetrics() {
	metrics.once.Do(func() {
		const ns, sub = "caddy", "clearinghouse"
		metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "enroll_requests_total",
			Help: "Enrollment protocol requests by operation and outcome status.",
		}, []string{"profile", "operation", "status"})
		metrics.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "certificates_issued_total",
			Help: "Device certificates issued by the operational CA.",
		}, []string{"profile"})
		metrics.pending = prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "enroll_pending",
			Help: "Enrollment requests waiting for an administrator (as last counted by this process).",
		})
		metrics.revoked = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "certificates_revoked_total",
			Help: "Device certificates revoked.",
		})
		metrics.authz = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "authorizations_total",
			Help: "OSP authorization and reauthorization requests by outcome.",
		}, []string{"outcome"})
		metrics.dests = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "destinations_returned_total",
			Help: "Destinations returned in OSP authorization responses.",
		})
		metrics.usage = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "usage_records_total",
			Help: "OSP usage records (the UsageDetail entries of usage indications, not the indications) by outcome.",
		}, []string{"outcome"})
		metrics.ospRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "osp_messages_refused_total",
			Help: "OSP requests refused before they were read as a message: too_large (HTTP 413), unreadable (the body could not be read), too_slow (it took over 30 s), malformed (not an OSP request that parses).",
		}, []string{"reason"})
		metrics.caNotAfter = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "ca_not_after_seconds",
			Help: "When the operational CA certificate that signs device certificates expires (Unix time).",
		}, []string{"profile"})
		metrics.lockouts = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "login_lockouts_total",
			Help: "Lockouts that failed enrollment logins started, by what is locked out: account, account_at_known_address, address.",
		}, []string{"kind"})
		metrics.loginsShed = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_shed_total",
			Help: "Enrollment logins refused as rate limited because the process's password-hash checks were all taken.",
		})
		metrics.collector = []prometheus.Collector{metrics.requests, metrics.issued,
			metrics.pending, metrics.revoked, metrics.authz, metrics.dests, metrics.usage, metrics.ospRefused, metrics.caNotAfter,
			metrics.lockouts, metrics.loginsShed}
	})
}

// registerMetrics adds the collectors to a config's registry (nil-safe).
func registerMetrics(reg *prometheus.Registry) error {
	initMetrics()
	if reg == nil {
		return nil
	}
	for _, c := range metrics.collector {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
