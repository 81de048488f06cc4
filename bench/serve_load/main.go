// Command serve_load puts `hubmirror serve` under load and checks its
// metrics against what the clients saw, for bench/serve_load.sh.
//
// CLIENTS clients (goroutines, each with its own connections) send
// REQUESTS requests each, a fixed mix of the API (model info, a recursive
// tree), HEADs, full GETs of small and medium files, range GETs of a large
// file and a 404, then it reports the latency percentiles of each kind and
// of all, and compares hubmirror_http_requests_total (by route, method and
// code) and hubmirror_http_response_bytes_total with the clients' counts.
// It exits 1 when a request failed (a transport error, a wrong status, a
// short body) or the metrics disagree.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type kind struct {
	name, route, method string
	path                func(r *rand.Rand) (string, string) // path, Range
	status              int
}

type key struct{ route, method, code string }

func main() {
	base := flag.String("url", "", "serve's URL")
	metricsURL := flag.String("metrics", "", "serve's metrics URL")
	repo := flag.String("repo", "bench/model", "repo to ask for")
	clients := flag.Int("clients", 200, "concurrent clients")
	requests := flag.Int("requests", 20, "requests per client")
	large := flag.Int64("large-size", 0, "size of large.bin (range GETs)")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound on the whole run")
	flag.Parse()
	if *base == "" || *metricsURL == "" || *large <= 0 {
		log.Fatal("serve_load: -url, -metrics and -large-size are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	fixed := func(p string) func(*rand.Rand) (string, string) {
		return func(*rand.Rand) (string, string) { return p, "" }
	}
	res := "/" + *repo + "/resolve/main/"
	kinds := []kind{
		{"info", "info", "GET", fixed("/api/models/" + *repo), 200},
		{"tree", "tree", "GET", fixed("/api/models/" + *repo + "/tree/main?recursive=true"), 200},
		{"head", "resolve", "HEAD", fixed(res + "large.bin"), 200},
		{"small", "resolve", "GET", fixed(res + "config.json"), 200},
		{"medium", "resolve", "GET", fixed(res + "medium.bin"), 200},
		{"range", "resolve", "GET", func(r *rand.Rand) (string, string) {
			off := r.Int64N(*large - 1<<20)
			return res + "large.bin", fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1)
		}, 206},
		{"missing", "resolve", "GET", fixed(res + "no-such-file"), 404},
	}

	tr := &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: 0, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	var mu sync.Mutex
	counts := map[key]int{}
	lat := map[string][]time.Duration{}
	var all []time.Duration
	var bytes int64
	var failures []string
	var wg sync.WaitGroup
	start := time.Now()
	for c := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for i := range *requests {
				k := kinds[(c+i)%len(kinds)]
				p, rng := k.path(r)
				req, _ := http.NewRequestWithContext(ctx, k.method, *base+p, nil)
				if rng != "" {
					req.Header.Set("Range", rng)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				var n int64
				if err == nil {
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("%s %s: %v", k.method, p, err))
				case resp.StatusCode != k.status:
					failures = append(failures, fmt.Sprintf("%s %s: status %d, want %d", k.method, p, resp.StatusCode, k.status))
				case resp.ContentLength >= 0 && k.method == "GET" && n != resp.ContentLength:
					failures = append(failures, fmt.Sprintf("%s %s: %d of %d bytes", k.method, p, n, resp.ContentLength))
				}
				if err == nil {
					counts[key{k.route, k.method, strconv.Itoa(resp.StatusCode)}]++
					bytes += n
				}
				lat[k.name] = append(lat[k.name], d)
				all = append(all, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	total := len(all)
	fmt.Printf("%d clients x %d requests = %d requests in %.2f s (%.0f req/s), %d MiB received, %d failed\n",
		*clients, *requests, total, elapsed.Seconds(), float64(total)/elapsed.Seconds(), bytes>>20, len(failures))
	fmt.Printf("%-8s %6s %9s %9s %9s %9s\n", "kind", "n", "p50 ms", "p90 ms", "p99 ms", "max ms")
	row := func(name string, ds []time.Duration) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(f float64) float64 {
			return float64(ds[min(len(ds)-1, int(f*float64(len(ds))))].Microseconds()) / 1000
		}
		fmt.Printf("%-8s %6d %9.1f %9.1f %9.1f %9.1f\n", name, len(ds), q(.5), q(.9), q(.99), float64(ds[len(ds)-1].Microseconds())/1000)
	}
	for _, k := range kinds {
		row(k.name, lat[k.name])
	}
	row("all", all)

	bad := len(failures) > 0
	for i, f := range failures {
		if i == 10 {
			fmt.Printf("... and %d more failures\n", len(failures)-10)
			break
		}
		fmt.Println("FAILED:", f)
	}
	// The metrics, once every handler has recorded its request.
	var fams families
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		fams, err = scrape(*metricsURL)
		if err != nil {
			log.Fatal(err)
		}
		if fams.value("hubmirror_http_requests_in_flight", nil) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("FAILED: requests still in flight 10 s after the clients were done")
			bad = true
			break
		}
	}
	metricTotal := 0.0
	for _, m := range fams["hubmirror_http_requests_total"].metrics {
		metricTotal += m.value
	}
	agree := metricTotal == float64(total)
	for k, n := range counts {
		got := fams.value("hubmirror_http_requests_total", map[string]string{"route": k.route, "method": k.method, "code": k.code})
		if got != float64(n) {
			fmt.Printf("FAILED: %v: metrics %v, clients %d\n", k, got, n)
			agree = false
		}
	}
	mbytes := 0.0
	for _, m := range fams["hubmirror_http_response_bytes_total"].metrics {
		mbytes += m.value
	}
	if mbytes != float64(bytes) {
		fmt.Printf("FAILED: bytes: metrics %v, clients %d\n", mbytes, bytes)
		agree = false
	}
	hist := 0.0
	for _, m := range fams["hubmirror_http_request_duration_seconds"].metrics {
		hist += m.value
	}
	if hist != float64(total) {
		fmt.Printf("FAILED: latency observations: metrics %v, requests %d\n", hist, total)
		agree = false
	}
	doc, _ := json.Marshal(counts2(counts))
	fmt.Printf("metrics agree with the clients: %v (requests %v, bytes %v, failures %v, blobs verified %v) %s\n", agree, metricTotal, mbytes,
		fams.value("hubmirror_verification_failures_total", nil), fams.value("hubmirror_blobs_verified_total", nil), doc)
	if bad || !agree {
		os.Exit(1)
	}
}

func counts2(c map[key]int) map[string]int {
	out := map[string]int{}
	for k, n := range c {
		out[k.route+" "+k.method+" "+k.code] = n
	}
	return out
}

type dtoMetric struct {
	labels map[string]string
	value  float64
}

type dtoFamily struct{ metrics []dtoMetric }

type families map[string]*dtoFamily

// scrape reads the metrics endpoint: counters and gauges by value,
// histograms by their sample count.
func scrape(url string) (families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	raw, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := families{}
	for name, f := range raw {
		df := &dtoFamily{}
		for _, m := range f.Metric {
			dm := dtoMetric{labels: map[string]string{}}
			for _, l := range m.Label {
				dm.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				dm.value = m.Counter.GetValue()
			case m.Gauge != nil:
				dm.value = m.Gauge.GetValue()
			case m.Histogram != nil:
				dm.value = float64(m.Histogram.GetSampleCount())
			}
			df.metrics = append(df.metrics, dm)
		}
		out[name] = df
	}
	return out, nil
}

func (f families) value(name string, labels map[string]string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	for _, m := range fam.metrics {
		if len(m.labels) != len(labels) {
			continue
		}
		ok := true
		for k, v := range labels {
			ok = ok && m.labels[k] == v
		}
		if ok {
			return m.value
		}
	}
	return 0
}
