package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serve --metrics-addr: /metrics on a listener of its own, in Prometheus'
// text format, without the token, counting what clients asked for; the
// serving port has no /metrics.
func TestServeMetricsAddr(t *testing.T) {
	dir, _ := pushModelDir(t, "tiny", 3<<20)
	dst := filepath.Join(t.TempDir(), "mirror")
	if _, stderr, code := pushJSON(t, dir, dst, "--repo", "org/tiny"); code != 0 {
		t.Fatalf("push: %s", stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"hubmirror", "serve", "--from", dst, "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--token", "tok", "--json", "--quiet"}, pw, &stderr)
		pw.Close()
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	br := bufio.NewReader(pr)
	base, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no URL: %v %s", err, stderr.String())
	}
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, br)
	var doc struct {
		MetricsURL string `json:"metrics_url"`
	}
	if err := json.Unmarshal([]byte(line), &doc); err != nil || !strings.HasSuffix(doc.MetricsURL, "/metrics") {
		t.Fatalf("the JSON line gives no metrics_url: %q (%v)", line, err)
	}
	base = strings.TrimSpace(base)
	get := func(url, token string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if code := get(base+"/org/tiny/resolve/main/config.json", "tok"); code != 200 {
			t.Fatalf("GET config.json: %d", code)
		}
	}
	if code := get(base+"/org/tiny/resolve/main/config.json", ""); code != 401 {
		t.Fatalf("without the token: %d", code)
	}
	if code := get(base+"/metrics", "tok"); code != 404 {
		t.Errorf("/metrics on the serving port: %d, want 404", code)
	}
	// A handler records its request when it returns, which may be just
	// after the client read the response: scrape until none is in flight.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(doc.MetricsURL)
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g := fams["hubmirror_http_requests_in_flight"].GetMetric(); len(g) == 1 && g[0].Gauge.GetValue() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Labels in the exposition's order: by name.
	want := map[string]float64{`code="200",method="GET",route="resolve"`: 3, `code="401",method="GET",route="other"`: 1}
	for _, m := range fams["hubmirror_http_requests_total"].GetMetric() {
		var labels []string
		for _, l := range m.Label {
			labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
		}
		k := strings.Join(labels, ",")
		if n, ok := want[k]; ok && n == m.Counter.GetValue() {
			delete(want, k)
		}
	}
	if len(want) != 0 {
		t.Errorf("metrics lack %v", want)
	}
	if fams["go_goroutines"] == nil || fams["hubmirror_blobs_verified_total"] == nil {
		t.Error("the Go runtime's or the mirror's metrics are missing")
	}
}
