package mirror

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hubmirror/hubmirror/storage"
)

// scrape reads the metrics endpoint as Prometheus would and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// scrapeSettled scrapes until no request is in flight: a handler records
// its request when it returns, which may be just after the client read the
// last byte of the response.
func scrapeSettled(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := scrape(t, url)
		if metricValue(fams, "hubmirror_http_requests_in_flight", nil) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still in flight 10 s after the clients were done")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of the counter, gauge or (the sample count
// of the) histogram of family name whose labels are exactly labels; 0 when
// there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// The metrics agree with what a client counted: requests by route, method
// and status (a 404 and a range GET among them), bytes received, the
// latency histogram's count, blobs verified, no verification failure and
// nothing in flight once the client is done.
func TestServerMetricsAgreeWithClient(t *testing.T) {
	s := newStore(t)
	dir, files := modelDir(t)
	pushDir(t, s, "org/model", dir, PushOptions{})
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(s, ServerOptions{SmallFile: 64 << 10, Metrics: metrics}))
	defer srv.Close()
	msrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer msrv.Close()

	type key struct{ route, method, code string }
	counts := map[key]int{}
	bytesBy := map[string]int64{}
	do := func(route, method, path string, hdr map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		counts[key{route, method, strconv.Itoa(resp.StatusCode)}]++
		bytesBy[route] += n
	}
	big := int64(len(files["model.safetensors"]))
	do("list", "GET", "/api/models", nil)
	do("info", "GET", "/api/models/org/model", nil)
	do("info", "GET", "/api/models/org/model/revision/main", nil)
	do("info", "GET", "/api/models/org/nothing", nil) // 404
	do("tree", "GET", "/api/models/org/model/tree/main?recursive=true", nil)
	do("refs", "GET", "/api/models/org/model/refs", nil)
	do("resolve", "GET", "/org/model/resolve/main/config.json", nil)                                                               // small: verified
	do("resolve", "HEAD", "/org/model/resolve/main/model.safetensors", nil)                                                        // no body
	do("resolve", "GET", "/org/model/resolve/main/model.safetensors", nil)                                                         // large: verified whole
	do("resolve", "GET", "/org/model/resolve/main/model.safetensors", map[string]string{"Range": "bytes=100-1099"})                // 206
	do("resolve", "GET", "/org/model/resolve/main/no-such-file", nil)                                                              // 404
	do("resolve", "GET", "/org/model/resolve/main/model.safetensors", map[string]string{"Range": fmt.Sprintf("bytes=%d-", big+5)}) // 416
	do("other", "GET", "/favicon.ico", nil)
	do("other", "DELETE", "/org/model/resolve/main/config.json", nil) // 405

	if counts[key{"resolve", "GET", "206"}] != 1 || counts[key{"resolve", "GET", "404"}] != 1 || counts[key{"info", "GET", "404"}] != 1 {
		t.Fatalf("the client's counts lack the 206 or 404 answers: %v", counts)
	}
	fams := scrapeSettled(t, msrv.URL)
	total := 0
	for k, n := range counts {
		method := k.method
		if method != "GET" && method != "HEAD" {
			method = "other"
		}
		labels := map[string]string{"route": k.route, "method": method, "code": k.code}
		if got := metricValue(fams, "hubmirror_http_requests_total", labels); got != float64(n) {
			t.Errorf("requests %v: metrics say %v, the client counted %d", labels, got, n)
		}
		total += n
	}
	sum := 0.0
	for _, m := range fams["hubmirror_http_requests_total"].GetMetric() {
		sum += m.Counter.GetValue()
	}
	if sum != float64(total) {
		t.Errorf("requests in all: metrics say %v, the client made %d", sum, total)
	}
	durations := 0.0
	for route, n := range bytesBy {
		if got := metricValue(fams, "hubmirror_http_response_bytes_total", map[string]string{"route": route}); got != float64(n) {
			t.Errorf("bytes of route %s: metrics say %v, the client received %d", route, got, n)
		}
		durations += metricValue(fams, "hubmirror_http_request_duration_seconds", map[string]string{"route": route})
	}
	if durations != float64(total) {
		t.Errorf("latency observations: %v, want %d", durations, total)
	}
	// config.json (small, read whole) and model.safetensors (a full GET)
	// were verified; the range is served from the verified blob.
	if got := metricValue(fams, "hubmirror_blobs_verified_total", nil); got != 2 {
		t.Errorf("blobs verified: %v, want 2", got)
	}
	for _, name := range []string{"hubmirror_verification_failures_total", "hubmirror_http_requests_in_flight", "hubmirror_upstream_fetches_total", "hubmirror_upstream_fetch_failures_total"} {
		if fams[name] == nil {
			t.Errorf("%s is not exported", name)
		} else if got := metricValue(fams, name, nil); got != 0 {
			t.Errorf("%s: %v, want 0", name, got)
		}
	}
}

// A blob that does not match its manifest counts as a verification failure.
func TestServerMetricsVerificationFailure(t *testing.T) {
	s := newStore(t)
	dir, files := modelDir(t)
	pushDir(t, s, "org/model", dir, PushOptions{})
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(s, ServerOptions{SmallFile: 64 << 10, Metrics: metrics}))
	defer srv.Close()
	msrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer msrv.Close()
	bad := append([]byte(nil), files["config.json"]...)
	bad[0] ^= 1
	if err := storage.PutBytes(context.Background(), s, BlobKey(storage.SHA256Hex(files["config.json"])), bad); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/org/model/resolve/main/config.json")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("a damaged small file: %s, want 500", resp.Status)
	}
	fams := scrapeSettled(t, msrv.URL)
	if got := metricValue(fams, "hubmirror_verification_failures_total", nil); got != 1 {
		t.Errorf("verification failures: %v, want 1", got)
	}
	if got := metricValue(fams, "hubmirror_blobs_verified_total", nil); got != 0 {
		t.Errorf("blobs verified: %v, want 0", got)
	}
}

// Each server has its own registry: two servers' metrics do not collide.
func TestNewMetricsPerRegistry(t *testing.T) {
	for range 2 {
		if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice with one registry succeeded")
	}
}

// Under concurrent load (bounded: 32 clients, 8 requests each, more than
// MaxConcurrent) the counters still agree with the clients' counts, and
// nothing is left in flight.
func TestServerMetricsUnderConcurrentLoad(t *testing.T) {
	s := newStore(t)
	dir, _ := modelDir(t)
	pushDir(t, s, "org/model", dir, PushOptions{})
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(s, ServerOptions{SmallFile: 64 << 10, MaxConcurrent: 4, Metrics: metrics}))
	defer srv.Close()
	msrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer msrv.Close()
	type req struct {
		route, method, path, rng string
	}
	mix := []req{
		{"info", "GET", "/api/models/org/model", ""},
		{"tree", "GET", "/api/models/org/model/tree/main", ""},
		{"resolve", "HEAD", "/org/model/resolve/main/model.safetensors", ""},
		{"resolve", "GET", "/org/model/resolve/main/tokenizer.json", ""},
		{"resolve", "GET", "/org/model/resolve/main/model.safetensors", "bytes=1000-200999"},
		{"resolve", "GET", "/org/model/resolve/main/sub/dir/weights.bin", ""},
		{"resolve", "GET", "/org/model/resolve/main/missing.bin", ""},
		{"info", "GET", "/api/models/org/missing", ""},
	}
	type key struct{ route, method, code string }
	var mu sync.Mutex
	counts := map[key]int{}
	var bytesTotal int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				q := mix[(c+i)%len(mix)]
				r, _ := http.NewRequest(q.method, srv.URL+q.path, nil)
				if q.rng != "" {
					r.Header.Set("Range", q.rng)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				counts[key{q.route, q.method, strconv.Itoa(resp.StatusCode)}]++
				bytesTotal += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fams := scrapeSettled(t, msrv.URL)
	for k, n := range counts {
		labels := map[string]string{"route": k.route, "method": k.method, "code": k.code}
		if got := metricValue(fams, "hubmirror_http_requests_total", labels); got != float64(n) {
			t.Errorf("requests %v: metrics say %v, the clients counted %d", labels, got, n)
		}
	}
	sum := 0.0
	for _, m := range fams["hubmirror_http_response_bytes_total"].GetMetric() {
		sum += m.Counter.GetValue()
	}
	if sum != float64(bytesTotal) {
		t.Errorf("bytes: metrics say %v, the clients received %d", sum, bytesTotal)
	}
	if got := metricValue(fams, "hubmirror_http_requests_in_flight", nil); got != 0 {
		t.Errorf("in flight after the load: %v", got)
	}
}
