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

// DefaultNegativeTTL is the default of UpstreamOptions.NegativeTTL.
const DefaultNegativeTTL = 30 * time.Second

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
	// NegativeTTL is how long the upstream's "not found" is remembered:
	// a repo it does not know (or does not let the server's token read)
	// for every revision of the repo, a branch, tag or commit id it does
	// not know for that revision. Within it, a request for what the
	// mirror lacks is answered 404 without asking the upstream again (a
	// client that retries, or many clients asking for a repo that does not
	// exist, cost the upstream one request). 0 means DefaultNegativeTTL.
	NegativeTTL time.Duration
	// Pull configures the fetches (Jobs, Connections, ChunkSize,
	// SpoolMemory, TempDir); its Include, Exclude, Revision, Listed and
	// Progress are not used: a fetch mirrors the whole revision. TempDir
	// also holds the temporary files of the files served while they stream
	// in (see pullstream.go): it needs room for the files a fetch
	// downloads at once (Jobs of them, 4 by default), each until it is
	// stored.
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
// A file a request waits for is served while it streams in from the
// upstream, to that request and to every other that asks for it meanwhile,
// from one download, verified as it goes (see pullstream.go). What the
// upstream does not know is remembered for NegativeTTL.
//
// The refs listing (/api/{type}s/{repo}/refs) shows the refs the mirror
// holds and does not ask the upstream: the upstream's refs would name
// revisions the mirror does not hold, and listing them would cost an
// upstream call per listing for little (clients download by branch, tag or
// commit, which are fetched on demand). A branch or tag resolved upstream
// is written to the mirror, so it is listed from then on.
//
// The hubclient.Client carries the server's own token, if any; the tokens
// clients send to the server are never forwarded.
type Upstream struct {
	client *hubclient.Client
	opts   UpstreamOptions

	mu     sync.Mutex
	checks map[string]upstreamCheck
	// pulls and refs are the pulls and ref resolutions under way, by
	// repo@commit and repo@ref.
	pulls map[string]*pullFlight
	refs  map[string]*refFlight
	// running counts the pulls and resolutions under way (Wait).
	running sync.WaitGroup
}

// Wait waits until the fetches under way end, or ctx does: a server that
// stops waits for them so that what they fetched gets its manifest.
func (u *Upstream) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		u.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Upstream{client: c, opts: opts, checks: map[string]upstreamCheck{},
		pulls: map[string]*pullFlight{}, refs: map[string]*refFlight{}}, nil
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
	commit, _, err := u.resolveRef(ctx, s.store, s.opts.Metrics, repo, name, "")
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

// pullFlight is a pull of one commit under way, shared by the requests
// that wait for it; it runs on when they go away.
type pullFlight struct {
	done chan struct{}
	err  error // set before done is closed
	// tempDir holds the temporary files of the streams.
	tempDir string

	mu     sync.Mutex
	stored map[string]Entry // the files whose blobs are in the store
	// streams are the downloads teed for clients, by path, until their
	// blob is stored or the pull ends (see pullstream.go); wanted counts
	// the requests waiting for each path.
	streams map[string]*fileStream
	wanted  map[string]int
	added   chan struct{} // closed (and replaced) when a file is stored or a stream starts
}

func newPullFlight(tempDir string) *pullFlight {
	return &pullFlight{done: make(chan struct{}), tempDir: tempDir, stored: map[string]Entry{},
		streams: map[string]*fileStream{}, wanted: map[string]int{}, added: make(chan struct{})}
}

func (f *pullFlight) signalLocked() {
	close(f.added)
	f.added = make(chan struct{})
}

func (f *pullFlight) add(e Entry) {
	f.mu.Lock()
	f.stored[e.Path] = e
	if st := f.streams[e.Path]; st != nil {
		delete(f.streams, e.Path)
		st.release()
	}
	f.signalLocked()
	f.mu.Unlock()
}

// end records the pull's outcome and drops its streams (their clients
// keep theirs).
func (f *pullFlight) end(err error) {
	f.mu.Lock()
	for p, st := range f.streams {
		delete(f.streams, p)
		st.release()
	}
	f.err = err
	f.mu.Unlock()
	close(f.done)
}

// waitFile waits until path's blob is in the store, and returns its entry,
// or until a stream of it that has not failed is under way, and returns
// that (acquired: the caller releases it). found is false when the pull
// ended without either (err says why, nil when the commit has no such file
// or the mirror held the commit already).
func (f *pullFlight) waitFile(ctx context.Context, path string) (e Entry, st *fileStream, found bool, err error) {
	f.mu.Lock()
	f.wanted[path]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.wanted[path]--; f.wanted[path] == 0 {
			delete(f.wanted, path)
		}
		f.mu.Unlock()
	}()
	for {
		f.mu.Lock()
		e, ok := f.stored[path]
		st := f.streams[path]
		if !ok && st != nil && !st.failed() {
			st.acquire()
		} else {
			st = nil
		}
		added := f.added
		f.mu.Unlock()
		if ok || st != nil {
			return e, st, true, nil
		}
		select {
		case <-added:
		case <-f.done:
			f.mu.Lock()
			e, ok := f.stored[path]
			f.mu.Unlock()
			return e, nil, ok, f.err
		case <-ctx.Done():
			return Entry{}, nil, false, ctx.Err()
		}
	}
}

func (f *pullFlight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startPull starts pulling commit of repo from the upstream into store,
// without a ref, with the file first (if any) before the others, unless
// a pull of it is under way: then it returns that one. A pull of a
// commit the mirror holds ends at once.
func (u *Upstream) startPull(ctx context.Context, store storage.Store, metrics *Metrics, repo, commit, first string) *pullFlight {
	key := repo + "@" + commit
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.pulls[key]; f != nil {
		return f
	}
	f := newPullFlight(u.opts.Pull.TempDir)
	if err := u.knownMissLocked(repo, commit); err != nil {
		f.end(err)
		return f
	}
	u.pulls[key] = f
	u.running.Add(1)
	go func() {
		defer u.running.Done()
		fctx := context.WithoutCancel(ctx)
		_, err := ReadManifest(fctx, store, repo, commit)
		if missing(err) {
			opts := u.opts.Pull
			opts.Include, opts.Exclude, opts.Revision, opts.Listed, opts.Progress = nil, nil, "", nil, nil
			opts.First, opts.Stored, opts.tee = nil, f.add, f.tee
			if first != "" {
				opts.First = []string{first}
			}
			_, err = Pull(fctx, u.client, store, repo, commit, opts)
			metrics.UpstreamFetch(err)
		}
		u.mu.Lock()
		delete(u.pulls, key)
		u.noteMissLocked(repo, commit, err)
		u.mu.Unlock()
		f.end(err)
	}()
	return f
}

// fetch pulls commit of repo into store (see startPull) and waits for the
// pull to end.
func (u *Upstream) fetch(ctx context.Context, store storage.Store, metrics *Metrics, repo, commit string) error {
	return u.startPull(ctx, store, metrics, repo, commit, "").wait(ctx)
}

// refFlight is a resolution of a ref upstream under way, shared by the
// requests that wait for it; it runs on when they go away.
type refFlight struct {
	// known is closed once commit and pull are set (pull is nil when the
	// mirror holds the commit), or when the resolution failed.
	known     chan struct{}
	knownOnce sync.Once
	commit    string
	pull      *pullFlight
	done      chan struct{}
	// result and err are set before done is closed.
	result string
	err    error
}

func (rf *refFlight) setKnown() { rf.knownOnce.Do(func() { close(rf.known) }) }

// resolveRef returns the commit ref of repo names upstream, resolved within
// TTL (a failure is retried sooner), with that commit in the mirror and
// the mirror's ref pointing at it. With file set, it returns as soon as the
// commit is known and its pull under way, with the pull (whose first file
// is file when this request started it); the caller then waits for the
// file, and the ref is written when the pull ends.
func (u *Upstream) resolveRef(ctx context.Context, store storage.Store, metrics *Metrics, repo, ref, file string) (string, *pullFlight, error) {
	key := repo + "@" + ref
	u.mu.Lock()
	if err := u.knownMissLocked(repo, ""); err != nil {
		u.mu.Unlock()
		return "", nil, err
	}
	c, ok := u.checks[key]
	if ok && u.opts.Now().Sub(c.at) < u.reuseFor(c.err) {
		u.mu.Unlock()
		return c.commit, nil, c.err
	}
	rf := u.refs[key]
	if rf == nil {
		rf = &refFlight{known: make(chan struct{}), done: make(chan struct{})}
		u.refs[key] = rf
		u.running.Add(1)
		go func() {
			defer u.running.Done()
			commit, err := u.refresh(context.WithoutCancel(ctx), store, metrics, repo, ref, rf, file)
			u.mu.Lock()
			u.rememberLocked(key, upstreamCheck{at: u.opts.Now(), commit: commit, err: err})
			if repoMiss(err) {
				u.rememberLocked(repo, upstreamCheck{at: u.opts.Now(), err: err})
			}
			delete(u.refs, key)
			u.mu.Unlock()
			rf.result, rf.err = commit, err
			rf.setKnown()
			close(rf.done)
		}()
	}
	u.mu.Unlock()
	if file != "" {
		select {
		case <-rf.known:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
		select {
		case <-rf.done:
		default:
			if rf.pull != nil {
				return rf.commit, rf.pull, nil
			}
		}
	}
	select {
	case <-rf.done:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	return rf.result, nil, rf.err
}

// reuseFor is how long a check with outcome err is reused.
func (u *Upstream) reuseFor(err error) time.Duration {
	switch {
	case err == nil:
		return u.opts.TTL
	case upstreamNotFound(err):
		return u.opts.NegativeTTL
	}
	return min(u.opts.TTL, maxFailureTTL)
}

// repoMiss reports whether err says the upstream does not let the server
// read the repo at all (rather than one revision of it).
func repoMiss(err error) bool {
	return upstreamNotFound(err) && !errors.Is(err, hubclient.ErrRevisionNotFound)
}

// knownMissLocked returns the upstream's "not found" of repo (any
// revision) or of repo at rev ("" for the repo alone) when it was answered
// within NegativeTTL, else nil. The checks map holds the repo's under the
// repo id (which has no '@'), a revision's under repo@rev.
func (u *Upstream) knownMissLocked(repo, rev string) error {
	now := u.opts.Now()
	keys := []string{repo}
	if rev != "" {
		keys = append(keys, repo+"@"+rev)
	}
	for _, k := range keys {
		if c, ok := u.checks[k]; ok && c.err != nil && upstreamNotFound(c.err) && now.Sub(c.at) < u.opts.NegativeTTL {
			return c.err
		}
	}
	return nil
}

// noteMissLocked remembers a "not found" of the upstream for a pull of
// commit (see knownMissLocked); other outcomes are not remembered.
func (u *Upstream) noteMissLocked(repo, commit string, err error) {
	if !upstreamNotFound(err) {
		return
	}
	key := repo + "@" + commit
	if repoMiss(err) {
		key = repo
	}
	u.rememberLocked(key, upstreamCheck{at: u.opts.Now(), err: err})
}

func (u *Upstream) rememberLocked(key string, c upstreamCheck) {
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
// mirror lacks it, and points the mirror's ref at it. It sets rf's commit
// and pull as soon as they are known.
func (u *Upstream) refresh(ctx context.Context, store storage.Store, metrics *Metrics, repo, ref string, rf *refFlight, file string) (string, error) {
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
		// The pull counts itself.
		pf := u.startPull(ctx, store, metrics, repo, commit, file)
		rf.commit, rf.pull = commit, pf
		rf.setKnown()
		if err := pf.wait(ctx); err != nil {
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

// resolveEarly serves a file of a revision the mirror lacks as its bytes
// arrive from the upstream (see pullstream.go), or once its blob is in the
// store, while the pull of the rest of the revision goes on (see
// Upstream). It returns false, having written nothing, when the
// request is to be served the ordinary way: no upstream, a repo it does
// not admit, a revision the mirror holds (or held when resolved within
// TTL), a failure the ordinary way reports, or a file the revision lacks.
func (s *Server) resolveEarly(w http.ResponseWriter, r *http.Request, repo, rev, file string) bool {
	u := s.opts.Upstream
	if u == nil || !u.Admits(repo) {
		return false
	}
	ctx := r.Context()
	if rev == "" {
		rev = "main"
	}
	var commit string
	var pf *pullFlight
	if IsCommitID(rev) {
		if _, err := s.manifest(ctx, repo, rev); !missing(err) {
			return false
		}
		commit, pf = rev, u.startPull(ctx, s.store, s.opts.Metrics, repo, rev, file)
	} else {
		name := shortRefName(rev)
		if strings.HasPrefix(rev, "refs/convert/") || ValidateRevision(name) != nil {
			return false
		}
		var err error
		commit, pf, err = u.resolveRef(ctx, s.store, s.opts.Metrics, repo, name, file)
		if err != nil || pf == nil {
			return false
		}
	}
	ok, err := s.waitStream(ctx, w, r, pf, commit, file)
	if err != nil {
		s.fail(w, r, upstreamFailure(repo, rev, err))
		return true
	}
	return ok
}
