package mirror

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a Server's Prometheus metrics, registered with the registry
// given to NewMetrics (one per server, so that servers and tests do not
// share counters):
//
//	hubmirror_http_requests_total{route,method,code}   requests answered
//	hubmirror_http_response_bytes_total{route}         body bytes sent
//	hubmirror_http_request_duration_seconds{route}     latency histogram
//	hubmirror_http_requests_in_flight                  requests being served (or waiting for a slot)
//	hubmirror_blobs_verified_total                     whole blobs hashed and found to match their manifest
//	hubmirror_verification_failures_total              responses refused or cut because the mirror's bytes did not match
//	hubmirror_upstream_fetches_total                   files fetched from an upstream hub
//	hubmirror_upstream_fetch_failures_total            upstream fetches that failed
//
// method is GET, HEAD or other; route is one of list (/api/models), info (model info), tree, refs,
// resolve (file content) and other (anything no route takes, and requests
// refused before routing: a missing token, a method other than GET or
// HEAD). code is the status sent; 499 counts a client gone before it was
// answered.
type Metrics struct {
	requests         *prometheus.CounterVec
	bytes            *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	blobsVerified    prometheus.Counter
	verifyFailures   prometheus.Counter
	upstreamFetches  prometheus.Counter
	upstreamFailures prometheus.Counter
}

// Route labels of Metrics.
const (
	routeList    = "list"
	routeInfo    = "info"
	routeTree    = "tree"
	routeRefs    = "refs"
	routeResolve = "resolve"
	routePaths   = "paths_info"
	routeOther   = "other"
)

// NewMetrics makes a Server's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubmirror_http_requests_total",
			Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubmirror_http_response_bytes_total",
			Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hubmirror_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubmirror_http_requests_in_flight",
			Help: "Requests being served or waiting for a slot (--max-concurrent).",
		}),
		blobsVerified: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubmirror_blobs_verified_total",
			Help: "Whole blobs hashed and found to match their manifest (a small file on each read, a larger blob once per VerifyTTL).",
		}),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubmirror_verification_failures_total",
			Help: "Responses refused or cut because the mirror's bytes did not match their manifest or chunk sidecar.",
		}),
		// Pull-through serving (serve --upstream, Upstream) counts its
		// fetches with UpstreamFetch.
		upstreamFetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubmirror_upstream_fetches_total",
			Help: "Calls to the upstream hub (pull-through serving): a revision pulled into the mirror, or a branch or tag resolved again.",
		}),
		upstreamFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubmirror_upstream_fetch_failures_total",
			Help: "Calls to the upstream hub that failed (unreachable, an error answer, bytes that did not verify).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.bytes, m.duration, m.inFlight, m.blobsVerified, m.verifyFailures, m.upstreamFetches, m.upstreamFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// UpstreamFetch counts one fetch from the upstream hub, failed when err is
// not nil. A nil Metrics counts nothing.
func (m *Metrics) UpstreamFetch(err error) {
	if m == nil {
		return
	}
	m.upstreamFetches.Inc()
	if err != nil {
		m.upstreamFailures.Inc()
	}
}

// request records one answered request.
func (m *Metrics) request(r *http.Request, lw *logWriter, took time.Duration) {
	if m == nil {
		return
	}
	route := lw.route
	if route == "" {
		route = routeOther
	}
	method := r.Method
	if method != http.MethodGet && method != http.MethodHead && method != http.MethodPost {
		method = "other" // a label per method a client makes up would grow without bound
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(lw.status)).Inc()
	m.bytes.WithLabelValues(route).Add(float64(lw.bytes))
	m.duration.WithLabelValues(route).Observe(took.Seconds())
	if errors.Is(lw.err, ErrCorrupt) {
		m.verifyFailures.Inc()
	}
}

func (m *Metrics) blobVerified() {
	if m != nil {
		m.blobsVerified.Inc()
	}
}

func (m *Metrics) begin() {
	if m != nil {
		m.inFlight.Inc()
	}
}

func (m *Metrics) end() {
	if m != nil {
		m.inFlight.Dec()
	}
}

// setRoute names the route of the request w answers, for its metrics.
func setRoute(w http.ResponseWriter, route string) {
	if lw, ok := w.(*logWriter); ok {
		lw.route = route
	}
}
