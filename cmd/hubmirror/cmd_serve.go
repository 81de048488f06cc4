package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:  "serve",
		Usage: "serve a mirror over HTTP with the Hugging Face Hub's download protocol (read-only)",
		Description: `Serves every repo and revision of the mirror at --from (a directory, file:///path or
s3://bucket/prefix) as the Hub does, so that Hugging Face clients download from it with
HF_ENDPOINT=http://ADDR: model info (/api/models/REPO[/revision/REV]), tree listings
(/api/models/REPO/tree/REV[/PATH], paginated, ?expand=true), paths-info (POST
/api/models/REPO/paths-info/REV), refs, and files (HEAD/GET /REPO/resolve/REV/PATH, with
ranges); datasets and spaces the same under /api/datasets/, /api/spaces/ and
/datasets/REPO/resolve/..., /spaces/REPO/resolve/... (repo_type="dataset" in
huggingface_hub). Variants are revisions of their own (e.g. REV int8). Every byte served is
checked first: against the manifest's sha256 (small files, and blobs verified whole),
or chunk by chunk against the blob's chunk-hash sidecar, so that a range of a large
blob reads only the chunks it covers; a response whose bytes do not match is cut.

The first line on stdout is the URL it listens on; with --json, the second is a
JSON document (url, from, repos) on one line. One access-log line per request
goes to stderr. SIGINT or SIGTERM stops it gracefully: it stops accepting, lets
requests in flight (and fetches from --upstream) finish (up to --grace), then
exits.

--metrics-addr HOST:PORT serves Prometheus metrics at /metrics on a listener of
their own (so that the mirror's port stays the Hub's protocol alone, and the
metrics need no token): hubmirror_http_requests_total{route,method,code},
hubmirror_http_response_bytes_total{route},
hubmirror_http_request_duration_seconds{route} (histogram),
hubmirror_http_requests_in_flight, hubmirror_blobs_verified_total,
hubmirror_verification_failures_total, hubmirror_upstream_fetches_total,
hubmirror_upstream_fetch_failures_total, and the Go runtime's and the
process's (go_*, process_*). With --json, the document gives its URL
(metrics_url).

--upstream HUB_URL makes it a pull-through mirror: a request for a repo or
revision the mirror lacks is fetched from that hub (every byte verified, as
pull --to does) into the mirror, then served; concurrent requests for the same
revision share one fetch. A branch or tag is resolved upstream again after
--upstream-ttl; while the hub cannot be reached, what the mirror holds is
served and the answer carries "X-Hubmirror-Upstream: unreachable; served from
mirror" (a revision it lacks is then a 502). A repo or revision the hub does
not know is a 404, remembered for --upstream-negative-ttl (default 30s): asked
again within it, the answer is 404 at once, without asking the hub. Only repos
that match an --allow glob (all when there is none) and no --deny glob are
fetched; globs match the repo id as the Hub writes it, "*" within one segment:
'org/*', 'datasets/org/*'. The hub is sent the token in --upstream-token-file,
if any, and never a client's token.

A file being fetched is served while it streams in: the first client and those
that come later (from the first byte, or their range's: a range beyond what has
arrived waits for it) receive the bytes as they arrive from the hub, through a
temporary file in --temp-dir (unlinked at once; memory does not grow with the
file), from one download. Each is verified
as it goes against the sha256 (or git blob id) the hub's listing gives: the last
byte of every response waits until the whole file matched, and a file that does
not match is not stored and the responses under way are cut short of their
Content-Length, so that no client can take a corrupt file as whole.

GET /api/models/{repo}/refs lists the refs the mirror holds; with --upstream it
is not asked upstream (a repo the mirror lacks is 404 there until a request
for one of its revisions fetched it).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the mirror's `URL` (required)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "address to listen on (port 0: any free port)"},
			&cli.StringFlag{Name: "token", Usage: "require this bearer token (clients set HF_TOKEN to it); default $HUBMIRROR_SERVE_TOKEN"},
			&cli.IntFlag{Name: "max-concurrent", Value: 32, Usage: "requests served at once; more wait"},
			&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "how long shutdown waits for requests in flight"},
			&cli.DurationFlag{Name: "storage-timeout", Value: mirror.DefaultStorageTimeout, Usage: "how long a request waits for each call to the mirror's storage before it is answered 503 (0: no bound)"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics at http://`HOST:PORT`/metrics (port 0: any free port); default none"},
			&cli.StringFlag{Name: "upstream", Usage: "fetch what the mirror lacks from the hub at `HUB_URL` (pull-through)"},
			&cli.StringFlag{Name: "upstream-token-file", Usage: "`FILE` holding the token sent to --upstream (gated and private repos)"},
			&cli.StringSliceFlag{Name: "allow", Usage: "fetch from --upstream only repos matching this `GLOB` (repeatable; default all)"},
			&cli.StringSliceFlag{Name: "deny", Usage: "never fetch from --upstream repos matching this `GLOB` (repeatable)"},
			&cli.DurationFlag{Name: "upstream-ttl", Value: mirror.DefaultUpstreamTTL, Usage: "how long a branch or tag resolved upstream is served before it is resolved again"},
			&cli.DurationFlag{Name: "upstream-negative-ttl", Value: mirror.DefaultNegativeTTL, Usage: "how long the upstream's \"not found\" of a repo or revision is answered without asking it again"},
			&cli.StringFlag{Name: "temp-dir", Usage: "`DIR` of the temporary files of files served while they stream in from --upstream (default the system's)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no access log"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 0 {
				return usageErrorf("serve takes no arguments (the mirror is --from URL), got %q", args)
			}
			if c.String("from") == "" {
				return usageErrorf("serve needs --from URL")
			}
			if c.Int("max-concurrent") < 1 {
				return usageErrorf("--max-concurrent must be at least 1")
			}
			if _, _, err := net.SplitHostPort(c.String("addr")); err != nil {
				return usageErrorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080 (%v)", c.String("addr"), err)
			}
			if a := c.String("metrics-addr"); a != "" {
				if _, _, err := net.SplitHostPort(a); err != nil {
					return usageErrorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9090 (%v)", a, err)
				}
			}
			if c.Duration("storage-timeout") < 0 {
				return usageErrorf("--storage-timeout must not be negative")
			}
			up := upstreamOptions{URL: c.String("upstream"), TokenFile: c.String("upstream-token-file"),
				Allow: c.StringSlice("allow"), Deny: c.StringSlice("deny"), TTL: c.Duration("upstream-ttl"),
				NegativeTTL: c.Duration("upstream-negative-ttl"), TempDir: c.String("temp-dir")}
			if up.URL == "" && (up.TokenFile != "" || len(up.Allow)+len(up.Deny) > 0 || c.IsSet("upstream-ttl") ||
				c.IsSet("upstream-negative-ttl") || up.TempDir != "") {
				return usageErrorf("--upstream-token-file, --allow, --deny, --upstream-ttl, --upstream-negative-ttl and --temp-dir need --upstream HUB_URL")
			}
			if up.TTL <= 0 || up.NegativeTTL <= 0 {
				return usageErrorf("--upstream-ttl and --upstream-negative-ttl must be positive")
			}
			for _, g := range append(append([]string{}, up.Allow...), up.Deny...) {
				if _, err := path.Match(g, ""); err != nil {
					return usageErrorf("--allow/--deny %q: %v", g, err)
				}
			}
			token := c.String("token")
			if token == "" {
				token = os.Getenv("HUBMIRROR_SERVE_TOKEN")
			}
			opts := serveOptions{From: c.String("from"), Addr: c.String("addr"), Token: token,
				MaxConcurrent: c.Int("max-concurrent"), Grace: c.Duration("grace"), Quiet: c.Bool("quiet"), JSON: c.Bool("json"),
				StorageTimeout: c.Duration("storage-timeout"), MetricsAddr: c.String("metrics-addr"), Upstream: up}
			return runServe(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	})
}

type serveOptions struct {
	From, Addr, Token string
	MaxConcurrent     int
	Grace             time.Duration
	Quiet, JSON       bool
	// StorageTimeout is ServerOptions.StorageTimeout; 0 means no bound.
	StorageTimeout time.Duration
	// MetricsAddr, when set, is where /metrics is served.
	MetricsAddr string
	// Upstream, when its URL is set, makes the server pull-through.
	Upstream upstreamOptions
}

// upstreamOptions are serve's --upstream flags.
type upstreamOptions struct {
	URL, TokenFile string
	Allow, Deny    []string
	TTL            time.Duration
	NegativeTTL    time.Duration
	TempDir        string
}

// newUpstream returns the upstream of o, or nil without --upstream.
func (o upstreamOptions) newUpstream() (*mirror.Upstream, error) {
	if o.URL == "" {
		return nil, nil
	}
	token := ""
	if o.TokenFile != "" {
		data, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-token-file: %w", err)
		}
		token = strings.TrimSpace(string(data))
		if token == "" {
			return nil, fmt.Errorf("--upstream-token-file %s is empty", o.TokenFile)
		}
	}
	client, err := hubclient.New(hubclient.Options{Endpoint: o.URL, Token: token})
	if err != nil {
		return nil, fmt.Errorf("--upstream: %w", err)
	}
	return mirror.NewUpstream(client, mirror.UpstreamOptions{Allow: o.Allow, Deny: o.Deny, TTL: o.TTL, NegativeTTL: o.NegativeTTL,
		Pull: mirror.PullOptions{TempDir: o.TempDir}})
}

func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	store, err := storage.Open(ctx, o.From, storage.OpenOptions{MaxConcurrent: 2*o.MaxConcurrent + 4, Create: o.Upstream.URL != ""})
	if err != nil {
		return err
	}
	defer store.Close()
	repos, err := mirror.ListRepos(ctx, store)
	if err != nil {
		return fmt.Errorf("reading the mirror at %s: %w", store.Location(), err)
	}

	var logger *slog.Logger
	if !o.Quiet {
		if o.JSON {
			logger = slog.New(slog.NewJSONHandler(stderr, nil))
		} else {
			logger = slog.New(slog.NewTextHandler(stderr, nil))
		}
	}
	storageTimeout := o.StorageTimeout
	if storageTimeout == 0 {
		storageTimeout = -1 // ServerOptions: negative is no bound
	}
	sopts := mirror.ServerOptions{Token: o.Token, MaxConcurrent: o.MaxConcurrent, Log: logger, StorageTimeout: storageTimeout}
	if sopts.Upstream, err = o.Upstream.newUpstream(); err != nil {
		return err
	}
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if o.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return err
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return err
		}
		if sopts.Metrics, err = mirror.NewMetrics(reg); err != nil {
			return err
		}
		if metricsLn, err = net.Listen("tcp", o.MetricsAddr); err != nil {
			return fmt.Errorf("listening on %s (--metrics-addr): %w", o.MetricsAddr, err)
		}
		defer metricsLn.Close()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	handler := mirror.NewServer(store, sopts)

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	metricsURL := ""
	if metricsSrv != nil {
		metricsURL = "http://" + metricsLn.Addr().String() + "/metrics"
		go metricsSrv.Serve(metricsLn)
		defer metricsSrv.Close()
	}
	// The first line is the URL, with --json too; serve prints while it
	// runs, so a later failure adds its JSON document as a line of its own.
	url := "http://" + ln.Addr().String()
	if err := streamOutput(stdout); err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintln(stdout, url)
	if o.JSON {
		d := map[string]any{"url": url, "from": store.Location(), "repos": repos}
		if metricsURL != "" {
			d["metrics_url"] = metricsURL
		}
		if o.Upstream.URL != "" {
			d["upstream"] = o.Upstream.URL
		}
		doc, err := json.Marshal(d)
		if err == nil {
			_, err = fmt.Fprintf(stdout, "%s\n", doc)
		}
		if err != nil {
			ln.Close()
			return err
		}
	} else {
		fmt.Fprintf(stderr, "serving %d repos from %s at %s (HF_ENDPOINT=%s)\n", len(repos), store.Location(), url, url)
		if metricsURL != "" {
			fmt.Fprintf(stderr, "metrics at %s\n", metricsURL)
		}
		if o.Upstream.URL != "" {
			fmt.Fprintf(stderr, "fetching what the mirror lacks from %s\n", o.Upstream.URL)
		}
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if logger != nil {
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", o.Grace, err)
	}
	if sopts.Upstream != nil {
		// Fetches under way end with their manifests (or are cut at the
		// grace period: a rerun completes them).
		if err := sopts.Upstream.Wait(sctx); err != nil {
			return fmt.Errorf("shutdown: fetches from --upstream still running after %s: %w", o.Grace, err)
		}
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if !o.JSON {
		fmt.Fprintln(stderr, "stopped")
	}
	return nil
}
