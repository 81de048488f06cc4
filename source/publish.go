package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/formats/torch"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// RefFor is the ref policy of every push: the ref that names the commit
// pushed for revision rev. A branch or tag keeps its short name
// (refs/heads/x and refs/tags/x become x), "" means main, and a commit id
// names no ref (noRef: the commit is reachable by its id alone).
func RefFor(rev string) (ref string, noRef bool) {
	switch {
	case rev == "":
		return hubclient.DefaultRevision, false
	case mirror.IsCommitID(rev):
		return "", true
	}
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if short, ok := strings.CutPrefix(rev, p); ok {
			return short, false
		}
	}
	return rev, false
}

// PushOptions configure Push.
type PushOptions struct {
	// Repo is the repo id in the mirror; "" means the source's.
	Repo string
	// Revision is the ref to set; "" means the source's (RefFor its
	// revision; for a cache snapshot directory, the cache's ref naming its
	// commit).
	Revision string
	// Commit overrides the commit id recorded.
	Commit string
	// Variant pushes the source as a variant of another commit of the repo.
	Variant *mirror.VariantSpec
	// AllowUnparsed pushes weight files that do not parse (CheckWeights).
	AllowUnparsed bool
	Jobs          int
	Progress      mirror.PushProgress
	// StaleUploadAge is mirror.PushOptions.StaleUploadAge: the age from
	// which incomplete blob uploads are aborted (0: the default).
	StaleUploadAge time.Duration
}

// Push copies src into the mirror s as one commit of its repo, recorded with
// its provenance (Record) under the ref policy (RefFor). It refuses
// (ErrRefused) a source without files, a mirror that lies inside the source
// directory, and, unless AllowUnparsed, weight files of a model directory
// that do not parse (CheckWeights).
func Push(ctx context.Context, s storage.Store, src *Source, o PushOptions) (*mirror.PushResult, error) {
	repo := o.Repo
	if repo == "" {
		repo = src.Repo
	}
	if err := mirror.ValidateRepoID(repo); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	popts, err := src.pushOptions(o)
	if err != nil {
		return nil, err
	}
	if err := Check(src, s.Location(), o); err != nil {
		return nil, err
	}
	files, err := src.Files()
	if err != nil {
		return nil, err
	}
	popts.Jobs, popts.Progress, popts.StaleUploadAge = o.Jobs, o.Progress, o.StaleUploadAge
	return mirror.Push(ctx, s, repo, files, popts)
}

// Check runs the checks of Push for a push of src into the mirror dst (a
// URL or a plain path) without writing anything: call it before opening
// dst, which creates a local mirror's directory.
func Check(src *Source, dst string, o PushOptions) error {
	if err := CheckDestination(src, dst); err != nil {
		return err
	}
	files, err := src.Files()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("source: %w: %s has no files; an empty revision is not pushed", ErrRefused, src.Spec)
	}
	// Files of the cache, the Hub or a mirror were verified against the
	// hashes their origin published; a directory's are checked here.
	if !o.AllowUnparsed && src.Kind == KindDir {
		return CheckWeights(src.Path, files)
	}
	return nil
}

// pushOptions applies the ref policy to a push of s.
func (s *Source) pushOptions(o PushOptions) (mirror.PushOptions, error) {
	po := mirror.PushOptions{Commit: s.Commit, Source: s.Record()}
	switch {
	case o.Revision != "":
		po.Revision = o.Revision
	case s.Kind == KindCache && s.Revision == "" && len(s.Refs) > 0:
		po.Revision = s.Refs[0]
	case s.Kind == KindCache && s.Revision == "":
		po.NoRef = true
	default:
		po.Revision, po.NoRef = RefFor(s.Revision)
	}
	if s.Kind == KindCache || s.Kind == KindDir {
		po.Source.Revision = po.Revision
	}
	if o.Commit != "" {
		po.Commit = o.Commit
	}
	switch {
	case o.Variant != nil:
		if o.Revision != "" && o.Revision != o.Variant.Name && s.Kind != KindMirror {
			return po, fmt.Errorf("source: a variant is its own revision: drop the revision or make it %q: %w", o.Variant.Name, ErrSpec)
		}
		po.Variant = o.Variant
		po.Commit = o.Commit // a variant's commit is derived from its content
		po.Revision, po.NoRef = "", false
	case s.Variant != nil:
		// A variant copied from another mirror stays a variant of the same
		// source commit.
		po.Variant = &mirror.VariantSpec{Name: s.Variant.Name, SourceRevision: s.Variant.SourceCommit}
		po.Commit, po.NoRef = o.Commit, false
		if po.Revision != s.Variant.Name {
			po.Revision = ""
		}
	}
	return po, nil
}

// PublishOptions configure PublishVariant.
type PublishOptions struct {
	Jobs     int
	Progress mirror.PushProgress
	// Source records where the built files came from; "" kind means a
	// variant record.
	Source mirror.Source
}

// PublishVariant pushes the built model directory dir into s as the variant
// name of commit sourceCommit of repo (its validation report is dir's
// validation.json).
func PublishVariant(ctx context.Context, s storage.Store, repo, name, sourceCommit, dir string, o PublishOptions) (*mirror.PushResult, error) {
	files, err := mirror.DirFiles(dir, nil)
	if err != nil {
		return nil, err
	}
	return mirror.Push(ctx, s, repo, files, mirror.PushOptions{Jobs: o.Jobs, Progress: o.Progress, Source: o.Source,
		Variant: &mirror.VariantSpec{Name: name, SourceRevision: sourceCommit}})
}

// PublishRevision pushes the built model directory dir into s as a commit of
// repo of its own, under the ref rev.
func PublishRevision(ctx context.Context, s storage.Store, repo, rev, dir string, o PublishOptions) (*mirror.PushResult, error) {
	files, err := mirror.DirFiles(dir, nil)
	if err != nil {
		return nil, err
	}
	ref, noRef := RefFor(rev)
	return mirror.Push(ctx, s, repo, files, mirror.PushOptions{Jobs: o.Jobs, Progress: o.Progress, Source: o.Source,
		Revision: ref, NoRef: noRef})
}

// localStorePath returns the directory a store URL or plain path names on
// this machine, or "" for a store elsewhere (s3://).
func localStorePath(dst string) string {
	if strings.HasPrefix(dst, "s3://") {
		return ""
	}
	if rest, ok := strings.CutPrefix(dst, "file://"); ok {
		u, err := url.Parse("file://" + rest)
		if err != nil {
			return ""
		}
		dst = filepath.FromSlash(u.Path)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return ""
	}
	return realPath(abs)
}

// realPath resolves the symbolic links of the longest existing prefix of
// the absolute path p.
func realPath(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// CheckDestination refuses (ErrRefused) a mirror dst (a URL or a plain
// path) that is the source's directory or lies inside it: its files would
// become part of the model on the next push. Call it before opening dst,
// which creates the directory.
func CheckDestination(src *Source, dst string) error {
	if src.Path == "" || (src.Kind != KindDir && src.Kind != KindCache && src.Kind != KindFile) {
		return nil
	}
	d := localStorePath(dst)
	if d == "" {
		return nil
	}
	abs, err := filepath.Abs(src.Path)
	if err != nil {
		return nil
	}
	sp := realPath(abs)
	if d == sp || strings.HasPrefix(d, sp+string(filepath.Separator)) {
		return fmt.Errorf("source: the mirror %s is inside the model %s: its files would become part of the model; put the mirror elsewhere: %w",
			dst, src.Spec, ErrRefused)
	}
	return nil
}

// CheckWeights checks, cheaply, that the weight files among files (paths
// relative to dir) parse: a safetensors file's header and that its data
// fits the file's size, a sharding index's JSON, a pytorch_model*.bin
// pickle's structure. A truncated or corrupt file is refused (ErrRefused).
func CheckWeights(dir string, files []mirror.PushFile) error {
	st, err := os.Stat(dir)
	if err != nil {
		return nil // files come from elsewhere
	}
	if !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := checkWeight(p, f.Path); err != nil {
			return fmt.Errorf("source: %w: %s does not parse (to push it as an opaque file: --allow-unparsed): %w", ErrRefused, f.Path, err)
		}
	}
	return nil
}

func checkWeight(path, name string) error {
	base := filepath.Base(name)
	switch {
	case strings.HasSuffix(base, ".safetensors"):
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		_, err = safetensors.ReadHeader(f, st.Size())
		return err
	case strings.HasSuffix(base, ".safetensors.index.json"):
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = safetensors.ReadIndex(f, name)
		return err
	case strings.HasPrefix(base, "pytorch_model") && strings.HasSuffix(base, ".bin"):
		g, err := torch.Open(path)
		if errors.Is(err, torch.ErrForbiddenGlobal) {
			return nil // complete, only not ours to read
		}
		if err != nil {
			return err
		}
		return g.Close()
	}
	return nil
}

// maxReportSize bounds the validation report of a variant read back from
// a mirror.
const maxReportSize = 16 << 20

// Report is what StoredReport reads of a variant's validation report (an
// artifact.Document). A report pushed by other means may lack these
// fields: Passed is then nil, and nothing says the variant failed.
type Report struct {
	Passed     *bool           `json:"passed"`
	Validation *forward.Report `json:"validation"`
	Error      string          `json:"error"`
}

// StoredReport reads the validation report of the variant m in s.
func StoredReport(ctx context.Context, s storage.Store, m *mirror.Manifest) (*Report, error) {
	path := m.Variant.Report
	if path == "" {
		path = mirror.ReportPath
	}
	e, ok := m.File(path)
	if !ok {
		return nil, fmt.Errorf("variant %s (commit %s) has no %s: %w", m.Variant.Name, m.Commit, path, mirror.ErrCorrupt)
	}
	if e.Size > maxReportSize {
		return nil, fmt.Errorf("variant %s (commit %s): %s is %d bytes, more than %d: %w", m.Variant.Name, m.Commit, path, e.Size, maxReportSize, mirror.ErrCorrupt)
	}
	rc, err := mirror.OpenFile(ctx, s, e, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("variant %s (commit %s): %s: %w", m.Variant.Name, m.Commit, path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("variant %s (commit %s): %s: %w", m.Variant.Name, m.Commit, path, err)
	}
	var doc Report
	if json.Unmarshal(data, &doc) != nil {
		return &Report{}, nil // not a report of ours
	}
	return &doc, nil
}
