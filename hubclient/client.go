package hubclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hubmirror/hubmirror/hubproto"
)

// DefaultEndpoint is the Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// Options configures a Client. The zero value of every field means its default.
type Options struct {
	// Endpoint is the Hub base URL (HF_ENDPOINT); default DefaultEndpoint.
	Endpoint string
	// Token authenticates requests to the endpoint host. It is sent as
	// "Authorization: Bearer <token>" to that host only, never to a CDN or
	// any other host a redirect points to, and never appears in errors.
	Token string
	// HTTPClient sends the requests. Its CheckRedirect is replaced (the
	// client follows redirects itself to control where the token goes); its
	// Transport is used as is; its Timeout, if set, bounds every request
	// including the whole body of a download range, so leave it zero and
	// rely on ReadTimeout. Default: a client whose transport has
	// ConnectTimeout, keeps enough idle connections for parallel ranges and
	// speaks HTTP/1.1 only, so parallel ranges get separate TCP connections.
	HTTPClient *http.Client
	// UserAgent is sent with every request; default "hubmirror".
	UserAgent string
	// MaxRetries bounds the retries of one request after a network error,
	// 408, 429 or 5xx (default 5; negative: none). For a download, the count
	// starts again with every MiB the attempts deliver, so a flaky link that
	// keeps delivering completes, and a server that cuts every connection
	// after a few bytes is given up on.
	MaxRetries int
	// RetryBaseDelay is the first backoff delay (default 1s); it grows
	// ×2 per retry up to RetryMaxDelay (default 16s), with ±50% jitter.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// MaxRetryAfter caps how long a Retry-After header may make the client
	// wait (default 2m).
	MaxRetryAfter time.Duration
	// ConnectTimeout bounds establishing a connection (default 10s; only
	// used by the default HTTP client).
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait for response headers and for each read of
	// a response body (default 30s). A stalled connection is then dropped
	// and the request retried.
	ReadTimeout time.Duration
	// SpeedLimit and SpeedTime, like curl's --speed-limit and --speed-time:
	// a response body that arrives slower than SpeedLimit bytes per second
	// (default 1024; negative: no limit) over SpeedTime (default 30s) of
	// waiting for the network is dropped, and the attempt counts as failed
	// (retried within MaxRetries). Time the caller spends between reads is
	// not counted, so a slow consumer never trips it.
	SpeedLimit int64
	SpeedTime  time.Duration
	// APITimeout bounds one attempt of a metadata call (repo info, a page
	// of a tree listing, resolving a file), from the request to the last
	// byte of its answer (default 60s). An attempt that takes longer is
	// dropped and retried within MaxRetries.
	APITimeout time.Duration
	// ConnectRetries is how many times a request is retried when the host
	// cannot be reached at all (connection refused, DNS failure, connect
	// timeout), default 2 (negative: none), after ConnectRetryDelay
	// (default 250ms), doubled for each further retry. Such a failure then
	// ends with an *UnreachableError (ErrUnreachable) within a second or so
	// instead of the backoff of a failing server.
	ConnectRetries    int
	ConnectRetryDelay time.Duration
}

func (o *Options) setDefaults() {
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.UserAgent == "" {
		o.UserAgent = "hubmirror"
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = time.Second
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 16 * time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 2 * time.Minute
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.SpeedLimit == 0 {
		o.SpeedLimit = 1024
	} else if o.SpeedLimit < 0 {
		o.SpeedLimit = 0
	}
	if o.SpeedTime <= 0 {
		o.SpeedTime = 30 * time.Second
	}
	if o.APITimeout <= 0 {
		o.APITimeout = 60 * time.Second
	}
	if o.ConnectRetries == 0 {
		o.ConnectRetries = 2
	} else if o.ConnectRetries < 0 {
		o.ConnectRetries = 0
	}
	if o.ConnectRetryDelay <= 0 {
		o.ConnectRetryDelay = 250 * time.Millisecond
	}
}

// Client talks to a Hugging Face Hub (or anything speaking its protocol).
// It is safe for concurrent use.
type Client struct {
	opts     Options
	hc       *http.Client
	endpoint *url.URL
	// errAPITimeout is the cause of a metadata call cancelled by APITimeout.
	errAPITimeout error
}

// New returns a client for opts.
func New(opts Options) (*Client, error) {
	opts.setDefaults()
	ep, err := url.Parse(strings.TrimRight(opts.Endpoint, "/"))
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("hubclient: endpoint %q is not an http(s) URL", opts.Endpoint)
	}
	if ep.User != nil {
		return nil, fmt.Errorf("hubclient: endpoint %q carries credentials; pass the token separately", ep.Redacted())
	}
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	} else {
		hc.Transport = newTransport(opts.ConnectTimeout)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{opts: opts, hc: &hc, endpoint: ep,
		errAPITimeout: fmt.Errorf("no complete answer within %s (the API timeout)", opts.APITimeout)}, nil
}

func newTransport(connectTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: connectTimeout,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		// HTTP/1.1 only: HTTP/2 would multiplex every range of a file onto
		// one TCP connection and lose the point of parallel ranges.
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression: true,
	}
}

// Endpoint returns the endpoint URL without a trailing slash.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// sameHost reports whether u is on the endpoint's scheme and host: the only
// place the token may go.
func (c *Client) sameHost(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.endpoint.Scheme) && strings.EqualFold(u.Host, c.endpoint.Host)
}

// request describes one logical HTTP request.
type request struct {
	method string
	url    string
	header http.Header
	// followAbsolute: follow redirects to other hosts too (downloads). When
	// false, only redirects to the same host are followed and an absolute
	// redirect to another host is returned to the caller (resolve).
	followAbsolute bool
	// what is asked for, for error messages.
	repoID, revision, path string
	// api: a metadata call, whose attempts are bounded by APITimeout.
	api bool
}

const maxRedirects = 10

// errReadTimeout is the cause of a request cancelled by the idle timer.
var errReadTimeout = errors.New("read timeout: no data from server")

// send performs one attempt: the request and its redirects. The returned
// response's body is wrapped with the idle read timeout.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	u, err := url.Parse(r.url)
	if err != nil {
		return nil, fmt.Errorf("hubclient: bad URL %q: %w", r.url, err)
	}
	began := time.Now()
	for hop := 0; ; hop++ {
		rctx, cancel := context.WithCancelCause(ctx)
		timer := time.AfterFunc(c.opts.ReadTimeout, func() { cancel(errReadTimeout) })
		var deadline *time.Timer
		if r.api {
			deadline = time.AfterFunc(c.opts.APITimeout-time.Since(began), func() { cancel(c.errAPITimeout) })
		}
		stop := func() {
			timer.Stop()
			if deadline != nil {
				deadline.Stop()
			}
		}
		body := func(rc io.ReadCloser) io.ReadCloser {
			return &idleReader{rc: rc, timer: timer, deadline: deadline, timeout: c.opts.ReadTimeout, cancel: cancel, ctx: rctx,
				speedLimit: c.opts.SpeedLimit, speedTime: c.opts.SpeedTime}
		}
		req, err := http.NewRequestWithContext(rctx, r.method, u.String(), nil)
		if err != nil {
			stop()
			cancel(nil)
			return nil, fmt.Errorf("hubclient: %w", err)
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", c.opts.UserAgent)
		if c.opts.Token != "" && c.sameHost(u) {
			req.Header.Set("Authorization", "Bearer "+c.opts.Token)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			stop()
			cause := context.Cause(rctx)
			cancel(nil)
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if cause == errReadTimeout || (cause != nil && cause == c.errAPITimeout) {
				return nil, fmt.Errorf("%s %s: %w", r.method, redactURL(u), cause)
			}
			if unreachable(err) {
				return nil, &UnreachableError{Host: u.Host, Err: stripURLError(err)}
			}
			return nil, fmt.Errorf("%s %s: %w", r.method, redactURL(u), stripURLError(err))
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.StatusCode == http.StatusNotModified {
			resp.Body = body(resp.Body)
			timer.Reset(c.opts.ReadTimeout)
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		stop()
		if loc == "" {
			drain(resp.Body)
			cancel(nil)
			return nil, fmt.Errorf("%w: %s %s: redirect %d without Location", ErrServer, r.method, redactURL(u), resp.StatusCode)
		}
		next, err := u.Parse(loc)
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") {
			drain(resp.Body)
			cancel(nil)
			return nil, fmt.Errorf("%w: %s %s: bad redirect location", ErrServer, r.method, redactURL(u))
		}
		if !r.followAbsolute && !c.sameHost(next) {
			// Hand the redirect to the caller (e.g. resolve of an LFS file
			// pointing at the CDN).
			resp.Body = body(resp.Body)
			return resp, nil
		}
		drain(resp.Body)
		cancel(nil)
		if hop >= maxRedirects {
			return nil, fmt.Errorf("%w: %s %s: more than %d redirects", ErrServer, r.method, redactURL(u), maxRedirects)
		}
		u = next
	}
}

// retryable is an error worth another attempt.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// retryPolicy is a backoff.BackOff with a retry budget that a caller
// refills as attempts make progress: once every progressQuantum bytes.
type retryPolicy struct {
	exp  *backoff.ExponentialBackOff
	max  int
	used int
	// gained counts the bytes delivered since the budget was last refilled.
	gained int64
	// A host that cannot be reached has its own, short budget: dialMax
	// retries after dialDelay, 2*dialDelay, ... lastUnreachable says the
	// last attempt failed so (retry sets it).
	dialMax, dialFails int
	dialDelay          time.Duration
	lastUnreachable    bool
}

// progressQuantum is how many bytes attempts must deliver to refill the
// retry budget. A connection that breaks after every few bytes (a broken
// proxy, a hostile server) so still exhausts the budget instead of retrying
// once per byte of the file, while a flaky link that breaks every few
// megabytes retries as long as it keeps delivering.
const progressQuantum = 1 << 20

func (c *Client) newRetryPolicy() *retryPolicy {
	return &retryPolicy{
		exp: &backoff.ExponentialBackOff{
			InitialInterval:     c.opts.RetryBaseDelay,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         c.opts.RetryMaxDelay,
		},
		max:       c.opts.MaxRetries,
		dialMax:   c.opts.ConnectRetries,
		dialDelay: c.opts.ConnectRetryDelay,
	}
}

func (p *retryPolicy) NextBackOff() time.Duration {
	if p.lastUnreachable {
		p.dialFails++
		if p.dialFails > p.dialMax {
			return backoff.Stop
		}
		return p.dialDelay << (p.dialFails - 1)
	}
	p.used++
	if p.used > p.max {
		return backoff.Stop
	}
	return p.exp.NextBackOff()
}

// Reset restarts the delay sequence but not the budget: backoff.Retry calls
// it after every Retry-After, and a server answering 429 forever must still
// run out of retries.
func (p *retryPolicy) Reset() { p.exp.Reset() }

// progressed records n bytes delivered by an attempt, and refills the
// budget (and restarts the delays) once progressQuantum bytes have come in.
func (p *retryPolicy) progressed(n int64) {
	if p.gained += n; p.gained >= progressQuantum {
		p.used, p.gained, p.dialFails = 0, 0, 0
		p.exp.Reset()
	}
}

// RetryFunc is told about every retry: the attempt that failed (1-based),
// the error and the wait before the next attempt.
type RetryFunc func(attempt int, err error, wait time.Duration)

// attempt sends r once and classifies the outcome for backoff.Retry: a
// response below 400 (or a 3xx the caller asked to see) is returned; a
// retryable failure (network error, 408, 429, 5xx) is a *retryable or a
// *backoff.RetryAfterError; anything else is permanent.
func (c *Client) attempt(ctx context.Context, r *request) (*http.Response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrServer) {
			return nil, backoff.Permanent(err)
		}
		return nil, &retryable{err}
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	herr := c.httpError(resp, r)
	drain(resp.Body)
	if isRetryableStatus(resp.StatusCode) {
		if d, ok := retryAfter(resp.Header, c.opts.MaxRetryAfter); ok {
			return nil, &backoff.RetryAfterError{Duration: d + jitter(d)}
		}
		return nil, &retryable{herr}
	}
	return nil, backoff.Permanent(herr)
}

// retry runs op with the client's backoff policy until it succeeds, fails
// permanently or the retry budget of policy runs out.
func retry[T any](ctx context.Context, policy *retryPolicy, what string, op func(attempt int) (T, error), onRetry RetryFunc) (T, error) {
	attempt := 0
	res, err := backoff.Retry(ctx, func() (T, error) {
		attempt++
		res, err := op(attempt)
		var ue *UnreachableError
		policy.lastUnreachable = err != nil && errors.As(err, &ue)
		return res, err
	},
		backoff.WithBackOff(policy),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			if onRetry != nil {
				onRetry(attempt, err, d)
			}
		}))
	if err != nil {
		if ctx.Err() != nil {
			return res, context.Cause(ctx)
		}
		var ra *backoff.RetryAfterError
		if errors.As(err, &ra) {
			err = fmt.Errorf("%w: %s: still rate limited (429) after %d attempts; wait and try again later",
				ErrServer, what, attempt)
		}
		var rt *retryable
		var ue *UnreachableError
		if errors.As(err, &rt) && errors.As(rt.err, &ue) {
			// Not a server error: nothing answered.
			out := *ue
			out.Attempts = attempt
			return res, &out
		}
		if rt != nil {
			err = fmt.Errorf("giving up after %d attempts: %w", attempt, rt.err)
			if !errors.Is(err, ErrServer) && !isHTTPError(err) {
				err = fmt.Errorf("%w: %w", ErrServer, err)
			}
		}
	}
	return res, err
}

// do performs r with retries and returns a response with status < 400 (or
// a 3xx the caller asked to see). Failing statuses become *HTTPError.
func (c *Client) do(ctx context.Context, r *request, onRetry RetryFunc) (*http.Response, error) {
	what := r.method + " " + redactURLString(r.url)
	return retry(ctx, c.newRetryPolicy(), what, func(int) (*http.Response, error) { return c.attempt(ctx, r) }, onRetry)
}

func isHTTPError(err error) bool {
	var h *HTTPError
	return errors.As(err, &h)
}

func isRetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// retryAfter parses Retry-After (seconds or an HTTP date), capped at max.
func retryAfter(h http.Header, max time.Duration) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(max/time.Second) {
			return max, true
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
		if d < 0 {
			d = 0
		}
	} else {
		return 0, false
	}
	if d > max {
		d = max
	}
	return d, true
}

// jitter adds up to 10% (at most 1s) so that parallel connections told to
// wait the same time do not come back in lockstep.
func jitter(d time.Duration) time.Duration {
	j := d / 10
	if j > time.Second {
		j = time.Second
	}
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(j)))
}

// httpError builds the typed error of a failing response.
func (c *Client) httpError(resp *http.Response, r *request) *HTTPError {
	code := resp.Header.Get(hubproto.HeaderErrorCode)
	msg := resp.Header.Get(hubproto.HeaderErrorMessage)
	kind := kindForResponse(resp.StatusCode, code, msg)
	if resp.StatusCode == http.StatusNotFound && code == "" && r.path != "" {
		kind = ErrEntryNotFound
	}
	if kind == ErrRepoNotFound && resp.StatusCode == http.StatusUnauthorized && c.opts.Token != "" && code == "" {
		kind = ErrUnauthorized
	}
	host := ""
	if !c.sameHost(resp.Request.URL) {
		// A CDN's refusal says nothing about the repository or the token
		// (none is sent there).
		host = resp.Request.URL.Host
		kind = ErrServer
		if resp.StatusCode == http.StatusNotFound {
			kind = ErrEntryNotFound
		}
	}
	return &HTTPError{
		Host:          host,
		StatusCode:    resp.StatusCode,
		Code:          code,
		ServerMessage: clipServer(msg, maxKeptServerText),
		RepoID:        r.repoID,
		Revision:      r.revision,
		Path:          r.path,
		URL:           redactURLString(resp.Request.URL.String()),
		RequestID:     clipServer(resp.Header.Get(hubproto.HeaderRequestID), maxKeptServerText),
		Commit:        clipServer(resp.Header.Get(hubproto.HeaderRepoCommit), maxKeptServerText),
		kind:          kind,
	}
}

// idleReader cancels its request when no Read completes within timeout,
// when the body arrives slower than speedLimit bytes per second over
// speedTime of waiting for it, or when the deadline timer (metadata calls)
// fires.
type idleReader struct {
	rc       io.ReadCloser
	timer    *time.Timer
	deadline *time.Timer // nil: none
	timeout  time.Duration
	cancel   context.CancelCauseFunc
	ctx      context.Context
	once     sync.Once

	speedLimit int64 // bytes per second; 0: none
	speedTime  time.Duration
	// waited is the time spent in Read since the last check, got the
	// bytes those Reads returned.
	waited time.Duration
	got    int64
}

// errTooSlow: a response body arrived slower than Options.SpeedLimit.
var errTooSlow = errors.New("transfer too slow")

func (r *idleReader) Read(p []byte) (int, error) {
	var t0 time.Time
	if r.speedLimit > 0 {
		t0 = time.Now()
	}
	n, err := r.rc.Read(p)
	if n > 0 {
		r.timer.Reset(r.timeout)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(r.ctx); cause != nil && (cause == errReadTimeout || errors.Is(cause, errTooSlow) || r.deadline != nil) {
			err = cause
		}
		return n, err
	}
	if r.speedLimit > 0 && err == nil {
		// Only the time spent waiting for the network counts: a caller
		// that reads slowly finds the data already there.
		r.waited += time.Since(t0)
		r.got += int64(n)
		if r.waited >= r.speedTime {
			if float64(r.got) < float64(r.speedLimit)*r.waited.Seconds() {
				slow := fmt.Errorf("%w: %d bytes in %s, below the minimum of %d bytes/s over %s (speed limit)",
					errTooSlow, r.got, r.waited.Round(time.Millisecond), r.speedLimit, r.speedTime)
				r.cancel(slow)
				return n, slow
			}
			r.waited, r.got = 0, 0
		}
	}
	return n, err
}

func (r *idleReader) Close() error {
	err := r.rc.Close()
	r.once.Do(func() {
		r.timer.Stop()
		if r.deadline != nil {
			r.deadline.Stop()
		}
		r.cancel(nil)
	})
	return err
}

// drain reads a little of an unwanted body so the connection can be reused,
// then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// redactURL drops the query (CDN URLs carry signatures there) and any user
// info, and cuts a long URL (its path comes from the server).
func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	if v.RawQuery != "" {
		v.RawQuery = "…"
	}
	return clipServer(v.String(), maxQuoted)
}

// unreachable reports whether err says that the host could not be reached
// at all: the connection (or the one to the proxy) was refused or timed
// out, or the name did not resolve.
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect")
}

func redactURLString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// stripURLError removes net/http's "Get \"url\": " prefix, whose URL may
// carry a signed query, keeping the underlying error.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
