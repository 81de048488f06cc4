package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/storage"
)

// A catalog lists the repos to mirror, one per line:
//
//	# comment
//	org/name[@revision] [--repo-type model|dataset|space] [--quantize int8[,fp16]]...
//
// Blank lines and lines starting with # are skipped; a # after the entry
// starts a comment too. Flags take their value as the next word or after
// '=' (--quantize=int8).

// ErrCatalog is wrapped by the errors of a malformed catalog.
var ErrCatalog = errors.New("malformed catalog")

// CatalogEntry is one repo of a catalog.
type CatalogEntry struct {
	// Line is the entry's line number in the catalog, from 1.
	Line int
	// Index is the entry's position among the catalog's entries, from 0
	// (comments and blank lines do not count); ShardCatalog takes entries
	// by it.
	Index    int
	Repo     string
	Revision string // "" means main
	// RepoType is model, dataset or space (default model).
	RepoType string
	// Quantize lists the entry's quantized variants; when empty, the
	// variants of CatalogOptions.Base apply.
	Quantize []quantize.Scheme
}

// Spec returns the entry as REPO[@REV].
func (e CatalogEntry) Spec() string {
	if e.Revision == "" {
		return e.Repo
	}
	return e.Repo + "@" + e.Revision
}

// maxCatalogLine bounds the length of a catalog line.
const maxCatalogLine = 64 << 10

// ParseCatalog reads a catalog. The first malformed line is an error that
// names it (and wraps ErrCatalog); a catalog without entries is one too.
func ParseCatalog(r io.Reader, name string) ([]CatalogEntry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxCatalogLine)
	var out []CatalogEntry
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.Index(text, "#"); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		e, err := parseCatalogLine(fields)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %w", name, line, err, ErrCatalog)
		}
		e.Line, e.Index = line, len(out)
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes: %w", name, line+1, maxCatalogLine, ErrCatalog)
		}
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no entries: %w", name, ErrCatalog)
	}
	return out, nil
}

func parseCatalogLine(fields []string) (CatalogEntry, error) {
	var e CatalogEntry
	if strings.HasPrefix(fields[0], "-") {
		return e, fmt.Errorf("the line starts with %q; want REPO[@REVISION] first", fields[0])
	}
	repo, rev, err := hubclient.ParseRepoRef(fields[0])
	if err != nil {
		return e, err
	}
	e.RepoType, e.Repo = hubproto.SplitRepo(repo)
	e.Revision = rev
	typeSet := false
	for i := 1; i < len(fields); i++ {
		name, value, hasValue := strings.Cut(fields[i], "=")
		if name != "--repo-type" && name != "--quantize" {
			return e, fmt.Errorf("unknown %q; an entry takes --repo-type and --quantize", fields[i])
		}
		if !hasValue {
			if i+1 == len(fields) {
				return e, fmt.Errorf("%s needs a value", name)
			}
			i++
			value = fields[i]
		}
		switch name {
		case "--repo-type":
			if typeSet {
				return e, fmt.Errorf("--repo-type given twice")
			}
			t, err := hubproto.ParseRepoType(value)
			if err != nil {
				return e, fmt.Errorf("--repo-type: %w", err)
			}
			e.RepoType, typeSet = t, true
		case "--quantize":
			for _, s := range strings.Split(value, ",") {
				scheme, err := quantize.ParseScheme(strings.TrimSpace(s))
				if err != nil {
					return e, fmt.Errorf("--quantize: %w", err)
				}
				e.Quantize = append(e.Quantize, scheme)
			}
		}
	}
	// datasets/org/name names its type; a --repo-type must agree.
	if typeSet {
		q, err := hubproto.QualifyRepo(e.RepoType, repo)
		if err != nil {
			return e, err
		}
		e.RepoType, e.Repo = hubproto.SplitRepo(q)
	}
	return e, nil
}

// ShardCatalog returns the entries of shard index (from 0) of count: those
// whose Index mod count is index. Each of count machines given the same
// catalog and its own index mirrors a disjoint part, and together they
// mirror all of it.
func ShardCatalog(entries []CatalogEntry, index, count int) ([]CatalogEntry, error) {
	if count < 1 || index < 0 || index >= count {
		return nil, fmt.Errorf("shard %d/%d: want 0 <= I < N: %w", index, count, ErrCatalog)
	}
	var out []CatalogEntry
	for _, e := range entries {
		if e.Index%count == index {
			out = append(out, e)
		}
	}
	return out, nil
}

// CatalogOptions configure RunCatalog.
type CatalogOptions struct {
	// Base is the template of every entry's Run; Source and Revision are
	// the entry's, and so are Variants when the entry names some.
	Base Options
	// Variant makes the variant of a quantization scheme an entry names;
	// nil means QuantizeVariant with the scheme's defaults.
	Variant func(quantize.Scheme) (Variant, error)
	// Parallel is the number of entries mirrored at once; 0 means 1.
	Parallel int
}

// CatalogResult is what became of one entry.
type CatalogResult struct {
	Line     int    `json:"line"`
	Entry    string `json:"entry"`
	RepoType string `json:"repo_type"`
	Passed   bool   `json:"passed"`
	// Report is Run's report (nil when the entry failed before Run).
	Report *Report `json:"report,omitempty"`
	Error  string  `json:"error,omitempty"`
	// Err is the error, for the caller to classify.
	Err error `json:"-"`
}

// CatalogError says how many entries of a catalog failed; it wraps
// forward.ErrValidationFailed when each failure is a failed validation.
type CatalogError struct {
	Failed, Total int
	// First is the first failed entry's result.
	First CatalogResult
	// validationOnly: every failure was a failed validation.
	validationOnly bool
}

func (e *CatalogError) Error() string {
	return fmt.Sprintf("%d of %d catalog entries failed (first: line %d, %s: %s)", e.Failed, e.Total, e.First.Line, e.First.Entry, e.First.Error)
}

func (e *CatalogError) Unwrap() error {
	if e.validationOnly {
		return forward.ErrValidationFailed
	}
	return nil
}

// RunCatalog mirrors each entry into s with Run, Parallel at a time; every
// entry is attempted whatever became of the others (only a cancelled ctx
// stops it). done is called once per entry as it ends, one call at a time.
// The error is nil when every entry passed, else a *CatalogError.
func RunCatalog(ctx context.Context, s storage.Store, entries []CatalogEntry, opts CatalogOptions, done func(CatalogResult)) error {
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 1
	}
	var mu sync.Mutex
	var failed []CatalogResult
	validationOnly := true
	var g errgroup.Group
	g.SetLimit(parallel)
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			res := runEntry(ctx, s, e, opts)
			mu.Lock()
			defer mu.Unlock()
			if !res.Passed {
				failed = append(failed, res)
				if !errors.Is(res.Err, forward.ErrValidationFailed) {
					validationOnly = false
				}
			}
			if done != nil {
				done(res)
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	first := failed[0]
	for _, f := range failed {
		if f.Line < first.Line {
			first = f
		}
	}
	return &CatalogError{Failed: len(failed), Total: len(entries), First: first, validationOnly: validationOnly}
}

func runEntry(ctx context.Context, s storage.Store, e CatalogEntry, opts CatalogOptions) CatalogResult {
	res := CatalogResult{Line: e.Line, Entry: e.Spec(), RepoType: e.RepoType}
	fail := func(err error) CatalogResult {
		res.Err, res.Error = err, err.Error()
		return res
	}
	o := opts.Base
	o.Source, o.Revision, o.RepoID = hubproto.JoinRepo(e.RepoType, e.Repo), e.Revision, ""
	if len(e.Quantize) > 0 {
		// The entry's quantizations replace the base's; its other
		// variants (conversions) stay.
		var vs []Variant
		for _, v := range o.Variants {
			if !isQuantizeVariant(v) {
				vs = append(vs, v)
			}
		}
		for _, scheme := range e.Quantize {
			mk := opts.Variant
			if mk == nil {
				mk = func(s quantize.Scheme) (Variant, error) { return QuantizeVariant(quantize.Options{Scheme: s}) }
			}
			v, err := mk(scheme)
			if err != nil {
				return fail(err)
			}
			vs = append(vs, v)
		}
		o.Variants = vs
	}
	if o.Progress != nil {
		progress, spec := o.Progress, e.Spec()
		o.Progress = func(step, detail string) { progress(step, spec+": "+detail) }
	}
	rep, err := Run(ctx, s, o)
	res.Report = rep
	if err != nil {
		return fail(err)
	}
	res.Passed = true
	return res
}

// isQuantizeVariant reports whether v is one QuantizeVariant makes.
func isQuantizeVariant(v Variant) bool {
	return strings.HasPrefix(v.Label, "quantize ")
}
