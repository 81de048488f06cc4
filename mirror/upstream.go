package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/storage"
)

// HeaderUpstream says, on an answer of a server with an upstream, that the
// upstream could not be asked and the mirror's copy was served:
// "unreachable; served from mirror" when the upstream hub could not be
// reached, "failed; served from mirror" when it answered with an error.
const HeaderUpstream = "X-Hubmirror-Upstream"

// DefaultUpstreamTTL is the default of UpstreamOptions.TTL.
const DefaultUpstreamTTL = 10 * time.Minute

// maxFailureTTL bounds how long a failed upstream check (unreachable, an
// error) is reused before the upstream is asked again.
const maxFailureTTL = 30 * time.Second

// maxUpstreamChecks bounds the revisions whose upstream check is
// remembered.
const maxUpstreamChecks = 10000

// UpstreamOptions configure an Upstream.
type UpstreamOptions struct {
	// Allow and Deny are globs (path.Match: "*" stays within a segment)
	// over the qualified repo id ("org/name" for a model,
	// "datasets/org/name", "spaces/org/name"): a repo is fetched from the
	// upstream when it matches an Allow glob (any repo when there is none)
	// and no Deny glob. Others are served from the mirror alone.
	Allow, Deny []string
	// TTL is how long a branch or tag resolved upstream is served from the
	// mirror before it is resolved again; 0 means DefaultUpstreamTTL. A
	// commit id is never resolved again.
	TTL time.Duration
	// Pull configures the fetches (Jobs, Connections, ChunkSize,
	// SpoolMemory, TempDir); its Include, Exclude, Revision, Listed and
	// Progress are not used: a fetch mirrors the whole revision.
	Pull PullOptions
	// Now is the clock of the TTL; nil means time.Now.
	Now func() time.Time
}

// Upstream is the hub a Server fetches from what its mirror lacks
// (pull-through serving, ServerOptions.Upstream). It is safe for
// concurrent use.
//
// A request for a commit id the mirror lacks pulls that commit from the
// upstream (Pull: every byte verified, blobs stored before the manifest)
// without a ref; a request for a branch or tag resolves it upstream (repo
// info) unless it was resolved within TTL, pulls the commit it names when
// the mirror lacks it, and points the mirror's ref at it. Concurrent
// requests for the same repo and revision share one upstream call and one
// pull. When the upstream cannot be asked, a revision the mirror holds is
// served from the mirror (with HeaderUpstream); one it lacks is a 502
// answer. A repo the upstream does not know (or does not let the server's
// token read) and the mirror lacks is 404 RepoNotFound, as without an
// upstream.
//
// The hubclient.Client carries the server's own token, if any; the tokens
// clients send to the server are never forwarded.
type Upstream struct {
	client *hubclient.Client
	opts   UpstreamOptions

	flights singleflight.Group

	mu     sync.Mutex
	checks map[string]upstreamCheck
}

// upstreamCheck is the outcome of resolving a ref upstream.
type upstreamCheck struct {
	at     time.Time
	commit string
	err    error
}

// NewUpstream returns an Upstream fetching through c.
func NewUpstream(c *hubclient.Client, opts UpstreamOptions) (*Upstream, error) {
	if c == nil {
		return nil, fmt.Errorf("mirror: an upstream needs a hub client: %w", ErrInvalid)
	}
	for _, g := range append(append([]string{}, opts.Allow...), opts.Deny...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("mirror: upstream glob %q: %v: %w", g, err, ErrInvalid)
		}
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultUpstreamTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Upstream{client: c, opts: opts, checks: map[string]upstreamCheck{}}, nil
}

// Admits reports whether repo (a qualified id) may be fetched from the
// upstream: it matches an Allow glob, or there is none, and no Deny glob.
func (u *Upstream) Admits(repo string) bool {
	if ValidateRepoID(repo) != nil {
		return false
	}
	for _, g := range u.opts.Deny {
		if ok, _ := path.Match(g, repo); ok {
			return false
		}
	}
	if len(u.opts.Allow) == 0 {
		return true
	}
	for _, g := range u.opts.Allow {
		if ok, _ := path.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// UpstreamError is an upstream failure that left the server without what a
// request asks for: the answer is 502.
type UpstreamError struct {
	Repo, Revision string
	Err            error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("mirror: %s@%s is not in the mirror and the upstream %s: %v", e.Repo, e.Revision, upstreamState(e.Err), e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// upstreamState says in a word or two how an upstream call failed.
func upstreamState(err error) string {
	switch {
	case errors.Is(err, hubclient.ErrUnreachable):
		return "unreachable"
	case upstreamNotFound(err):
		return "not found"
	}
	return "failed"
}

// upstreamNotFound reports whether the upstream said the repo or revision
// does not exist, or is not readable with the server's token.
func upstreamNotFound(err error) bool {
	for _, e := range []error{hubclient.ErrRepoNotFound, hubclient.ErrRevisionNotFound, hubclient.ErrGatedRepo,
		hubclient.ErrUnauthorized, hubclient.ErrForbidden, hubclient.ErrInvalidRepoID} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// missing reports whether err says the mirror lacks a repo or revision.
func missing(err error) bool {
	return errors.Is(err, ErrRevisionNotFound) || errors.Is(err, ErrRepoNotFound)
}

// revision returns the manifest rev of repo names for a request, fetching
// it from the upstream first when the server has one that admits repo (see
// Upstream). It replaces manifest in every handler that serves a revision.
func (s *Server) revision(w http.ResponseWriter, r *http.Request, repo, rev string) (*cachedManifest, error) {
	ctx := r.Context()
	u := s.opts.Upstream
	if rev == "" {
		rev = "main"
	}
	if u == nil || !u.Admits(repo) {
		return s.manifest(ctx, repo, rev)
	}
	if IsCommitID(rev) {
		cm, err := s.manifest(ctx, repo, rev)
		if !missing(err) {
			return cm, err
		}
		if err := u.fetch(ctx, s.store, s.opts.Metrics, repo, rev); err != nil {
			return nil, upstreamFailure(repo, rev, err)
		}
		return s.manifest(ctx, repo, rev)
	}
	name := shortRefName(rev)
	if strings.HasPrefix(rev, "refs/convert/") || ValidateRevision(name) != nil {
		// A variant is made here, never upstream; a name no ref can have
		// names nothing.
		return s.manifest(ctx, repo, rev)
	}
	commit, err := u.resolveRef(ctx, s.store, s.opts.Metrics, repo, name)
	if err == nil {
		return s.manifest(ctx, repo, commit)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil, err
	}
	cm, merr := s.manifest(ctx, repo, rev)
	if merr == nil {
		if !upstreamNotFound(err) {
			w.Header().Set(HeaderUpstream, upstreamState(err)+"; served from mirror")
		}
		return cm, nil
	}
	if !missing(merr) {
		return nil, merr
	}
	return nil, upstreamFailure(repo, rev, err)
}

// shortRefName is the ref a revision is stored under: without "refs/heads/" or
// "refs/tags/".
func shortRefName(rev string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if short, ok := strings.CutPrefix(rev, p); ok {
			return short
		}
	}
	return rev
}

// upstreamFailure is the error of a request for a revision the mirror lacks
// and the upstream did not deliver: not found (404) when the upstream says
// so, else an *UpstreamError (502).
func upstreamFailure(repo, rev string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, hubclient.ErrRevisionNotFound):
		return fmt.Errorf("mirror: %s@%s: not in the mirror, and upstream: %v: %w", repo, rev, err, ErrRevisionNotFound)
	case upstreamNotFound(err):
		return fmt.Errorf("mirror: %s: not in the mirror, and upstream: %v: %w", repo, err, ErrRepoNotFound)
	}
	return &UpstreamError{Repo: repo, Revision: rev, Err: err}
}

// failUpstream writes the 502 answer of an *UpstreamError.
func (s *Server) failUpstream(w http.ResponseWriter, r *http.Request, err *UpstreamError) {
	logError(w, err)
	w.Header().Set(HeaderUpstream, upstreamState(err.Err))
	w.Header().Set("Retry-After", "10")
	writeError(w, r, http.StatusBadGateway, "", err.Error())
}

// wait waits for a shared call, or for ctx to end (the call runs on for
// the others).
func wait(ctx context.Context, ch <-chan singleflight.Result) (any, error) {
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch pulls commit of repo from the upstream into store, without a ref,
// unless the mirror holds it; concurrent fetches of the same commit share
// one pull, which runs on when the requests that wait for it go away.
func (u *Upstream) fetch(ctx context.Context, store storage.Store, metrics *Metrics, repo, commit string) error {
	ch := u.flights.DoChan("pull\x00"+repo+"@"+commit, func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		if _, err := ReadManifest(fctx, store, repo, commit); !missing(err) {
			return nil, err
		}
		opts := u.opts.Pull
		opts.Include, opts.Exclude, opts.Revision, opts.Listed, opts.Progress = nil, nil, "", nil, nil
		_, err := Pull(fctx, u.client, store, repo, commit, opts)
		metrics.UpstreamFetch(err)
		return nil, err
	})
	_, err := wait(ctx, ch)
	return err
}

// resolveRef returns the commit ref of repo names upstream, resolved within
// TTL (a failure is retried sooner), with that commit in the mirror and
// the mirror's ref pointing at it.
func (u *Upstream) resolveRef(ctx context.Context, store storage.Store, metrics *Metrics, repo, ref string) (string, error) {
	key := repo + "@" + ref
	u.mu.Lock()
	c, ok := u.checks[key]
	u.mu.Unlock()
	if ok && u.opts.Now().Sub(c.at) < u.reuseFor(c.err) {
		return c.commit, c.err
	}
	ch := u.flights.DoChan("ref\x00"+key, func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		commit, err := u.refresh(fctx, store, metrics, repo, ref)
		u.remember(key, upstreamCheck{at: u.opts.Now(), commit: commit, err: err})
		return commit, err
	})
	v, err := wait(ctx, ch)
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// reuseFor is how long a check with outcome err is reused.
func (u *Upstream) reuseFor(err error) time.Duration {
	if err == nil || upstreamNotFound(err) {
		return u.opts.TTL
	}
	return min(u.opts.TTL, maxFailureTTL)
}

func (u *Upstream) remember(key string, c upstreamCheck) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.checks) >= maxUpstreamChecks {
		now := u.opts.Now()
		for k, old := range u.checks {
			if now.Sub(old.at) >= u.reuseFor(old.err) {
				delete(u.checks, k)
			}
		}
		for k := range u.checks { // still full: drop any
			if len(u.checks) < maxUpstreamChecks {
				break
			}
			delete(u.checks, k)
		}
	}
	u.checks[key] = c
}

// refresh resolves ref upstream, fetches the commit it names when the
// mirror lacks it, and points the mirror's ref at it.
func (u *Upstream) refresh(ctx context.Context, store storage.Store, metrics *Metrics, repo, ref string) (string, error) {
	info, err := u.client.RepoInfo(ctx, repo, ref)
	if err != nil {
		metrics.UpstreamFetch(err)
		return "", err
	}
	commit := info.SHA
	if !IsCommitID(commit) {
		err := fmt.Errorf("mirror: upstream resolves %s@%s to %q, not a commit id: %w", repo, ref, commit, ErrInvalid)
		metrics.UpstreamFetch(err)
		return "", err
	}
	cur, err := ReadRef(ctx, store, repo, ref)
	switch {
	case err == nil && cur == commit:
		metrics.UpstreamFetch(nil)
		return commit, nil
	case err == nil:
		if m, err := ReadManifest(ctx, store, repo, cur); err == nil && m.Variant != nil {
			// The mirror's variant of that name stays.
			metrics.UpstreamFetch(nil)
			return cur, nil
		}
	case !missing(err):
		return "", err
	}
	if _, err := ReadManifest(ctx, store, repo, commit); err != nil {
		if !missing(err) {
			return "", err
		}
		// fetch counts the pull.
		if err := u.fetch(ctx, store, metrics, repo, commit); err != nil {
			return "", err
		}
	} else {
		metrics.UpstreamFetch(nil)
	}
	if err := storage.PutBytes(ctx, store, RefKey(repo, ref), []byte(commit)); err != nil {
		return "", err
	}
	return commit, nil
}
