// Package pipeline is the mirroring job in one call: pull a repository
// from the Hub (or take a model directory received on disk), push it into a
// mirror, build the requested variants (quantized, converted), validate each
// against the original with the native forward pass, and push the ones that
// pass beside their source, each with its validation report. It is what
// `hubmirror mirror` runs, as a CI job, a Kubernetes Job or a cron on the
// mirror host.
//
// Without variants, a repo streams from the Hub straight into the mirror
// (mirror.Pull), with no local copy; variants need the files on disk, so
// then the repo is pulled into the Hugging Face cache first.
//
// Run is idempotent: a rerun with nothing new downloads nothing (the
// mirror, or the Hugging Face cache, has the files), uploads nothing (the
// mirror has the blobs and the manifest) and rebuilds no variant that the
// mirror already holds for the same source commit.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/weights"
)

// StepError names the step of the pipeline that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Variant is one derived artifact to build: its revision name in the
// mirror, the pass that makes it and the kind of validation it gets.
type Variant struct {
	Name string
	// Label describes the pass in reports ("quantize int8").
	Label string
	Pass  artifact.Pass
	Kind  forward.Kind
	// Skip, when set, says why the source needs no such variant (a
	// safetensors conversion of a model already in safetensors); "" builds.
	Skip func(l *formats.Layout) string
}

// QuantizeVariant is the variant quantize.Quantize makes with opts; it is
// named after the scheme ("int8", "fp16", "bf16"; "int8-g128" with a group
// size).
func QuantizeVariant(opts quantize.Options) (Variant, error) {
	if _, err := quantize.ParseScheme(string(opts.Scheme)); err != nil {
		return Variant{}, err
	}
	name := string(opts.Scheme)
	if opts.GroupSize > 0 {
		name = fmt.Sprintf("%s-g%d", name, opts.GroupSize)
	}
	kind := map[quantize.Scheme]forward.Kind{quantize.Int8: forward.KindInt8, quantize.FP16: forward.KindF16, quantize.BF16: forward.KindBF16}[opts.Scheme]
	return Variant{Name: name, Label: "quantize " + name, Kind: kind,
		Pass: func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return quantize.Quantize(g, cfg, opts)
		}}, nil
}

// ConvertVariant is the pickle-to-safetensors conversion, named
// "safetensors"; a source already in safetensors needs none.
func ConvertVariant(target string) (Variant, error) {
	if target != "safetensors" {
		return Variant{}, fmt.Errorf("pipeline: --convert %q: the conversion target is safetensors", target)
	}
	return Variant{Name: "safetensors", Label: "convert safetensors", Kind: forward.KindExact,
		Pass: func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return convert.DedupeShared(g, cfg)
		},
		Skip: func(l *formats.Layout) string {
			if l.Kind == formats.KindSafetensors || l.Kind == formats.KindSafetensorsIndex {
				return "the source is already safetensors"
			}
			return ""
		}}, nil
}

// Options configure Run.
type Options struct {
	// Source is a repo id (org/name[@rev]) pulled from the Hub, or a local
	// model directory.
	Source string
	// Revision overrides the revision of a repo id (default main).
	Revision string
	// RepoID names a local directory's repo in the mirror (default
	// local/<directory name>).
	RepoID string
	// Hub is the client for repo ids; nil means one from the environment.
	Hub      *hubclient.Client
	Download hubclient.DownloadOptions
	Variants []Variant
	// Build configures the variant builds (shard size, threads, Force, the
	// validation inputs); Validate.Kind and Validate.Thresholds are set per
	// variant.
	Build artifact.Options
	// Thresholds returns the limits for a kind of validation; nil means
	// forward.DefaultThresholds.
	Thresholds func(forward.Kind) (forward.Thresholds, error)
	// WorkDir holds the variants while they are built and pushed; "" means a
	// temporary directory, removed afterwards.
	WorkDir string
	// Jobs is the number of files pushed at once (0: mirror's default).
	Jobs int
	// Progress, when set, is told each step as it starts.
	Progress func(step, detail string)
}

// SourceReport says what the pipeline did with the source.
type SourceReport struct {
	Repo     string `json:"repo"`
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Dir      string `json:"dir"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
	// Downloaded is what came from the Hub in this run.
	Downloaded int64 `json:"downloaded_bytes"`
	// Uploaded counts the blobs this run put into the mirror.
	Uploaded      int   `json:"uploaded_files"`
	UploadedBytes int64 `json:"uploaded_bytes"`
}

// VariantReport says what became of one variant.
type VariantReport struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	// Status is "pushed", "present" (the mirror had it for this source
	// commit), "skipped" (see Reason), or "failed".
	Status        string          `json:"status"`
	Reason        string          `json:"reason,omitempty"`
	Commit        string          `json:"commit,omitempty"`
	Passed        bool            `json:"passed"`
	Validation    *forward.Report `json:"validation,omitempty"`
	Uploaded      int             `json:"uploaded_files"`
	UploadedBytes int64           `json:"uploaded_bytes"`
	Error         string          `json:"error,omitempty"`
}

// Report is the result of Run.
type Report struct {
	Source   SourceReport    `json:"source"`
	Variants []VariantReport `json:"variants"`
	Seconds  float64         `json:"seconds"`
	// Passed is false when a step failed.
	Passed bool `json:"passed"`
	// FailedStep names the first step that failed.
	FailedStep string `json:"failed_step,omitempty"`
}

// Run mirrors opts.Source into s with its variants. The report is returned
// also on failure, covering what was done; the error is a *StepError (it
// wraps forward.ErrValidationFailed when a variant failed validation).
// Every variant is attempted even when one fails.
func Run(ctx context.Context, s storage.Store, opts Options) (*Report, error) {
	start := time.Now()
	rep := &Report{Variants: []VariantReport{}}
	progress := func(step, detail string) {
		if opts.Progress != nil {
			opts.Progress(step, detail)
		}
	}
	fail := func(step string, err error) (*Report, error) {
		rep.Seconds = time.Since(start).Seconds()
		if rep.FailedStep == "" {
			rep.FailedStep = step
		}
		return rep, &StepError{Step: step, Err: err}
	}

	// 1. The source: a repo streamed from the Hub straight into the mirror
	// when no variant needs it on disk; else a local directory as it is, or
	// a pull into the Hugging Face cache.
	progress("pull", opts.Source)
	if len(opts.Variants) == 0 && !opts.Download.Offline {
		if src, ok, err := stream(ctx, s, opts); ok {
			if err != nil {
				return fail("pull", err)
			}
			rep.Source = *src
			rep.Seconds, rep.Passed = time.Since(start).Seconds(), true
			return rep, nil
		}
	}
	src, files, pushOpts, err := source(ctx, opts)
	if err != nil {
		return fail("pull", err)
	}
	rep.Source = *src

	// 2. Push the source.
	progress("push", src.Repo+"@"+src.Revision)
	pushOpts.Jobs = opts.Jobs
	pr, err := mirror.Push(ctx, s, src.Repo, files, pushOpts)
	if err != nil {
		return fail("push", err)
	}
	rep.Source.Commit = pr.Commit
	rep.Source.Uploaded, rep.Source.UploadedBytes = pr.Uploaded, pr.UploadedBytes

	// 3. The variants.
	work := opts.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "hubmirror-mirror-"); err != nil {
			return fail("variants", err)
		}
		defer os.RemoveAll(work)
	}
	layout, err := formats.Detect(src.Dir)
	if err != nil && len(opts.Variants) > 0 {
		return fail("variants", err)
	}
	var firstErr error
	for _, v := range opts.Variants {
		vr, err := buildVariant(ctx, s, opts, v, src.Dir, layout, rep.Source, work, progress)
		rep.Variants = append(rep.Variants, vr)
		if err != nil && firstErr == nil {
			firstErr = &StepError{Step: v.Label, Err: err}
			rep.FailedStep = v.Label
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Passed = firstErr == nil
	return rep, firstErr
}

// stream mirrors a repo id from the Hub without a local copy (mirror.Pull);
// offline, Run takes the repo from the Hugging Face cache instead.
// ok is false when the source is a local directory.
func stream(ctx context.Context, s storage.Store, opts Options) (*SourceReport, bool, error) {
	if st, err := os.Stat(opts.Source); err == nil && st.IsDir() {
		return nil, false, nil
	}
	repo, rev, hub, err := hubSource(opts)
	if err != nil {
		return nil, true, err
	}
	pr, err := mirror.Pull(ctx, hub, s, repo, rev, mirror.PullOptions{Include: opts.Download.Include, Exclude: opts.Download.Exclude, Jobs: opts.Jobs,
		Connections: opts.Download.Connections})
	if err != nil {
		return nil, true, err
	}
	return &SourceReport{Repo: repo, Revision: rev, Commit: pr.Commit, Files: pr.Files, Bytes: pr.Bytes,
		Downloaded: pr.Downloaded, Uploaded: pr.Uploaded, UploadedBytes: pr.UploadedBytes}, true, nil
}

// hubSource parses a repo id source and returns the client to fetch it.
func hubSource(opts Options) (repo, rev string, hub *hubclient.Client, err error) {
	repo, rev, err = hubclient.ParseRepoRef(opts.Source)
	if err != nil {
		return "", "", nil, fmt.Errorf("%s is neither a model directory nor a repo id: %w", opts.Source, err)
	}
	if opts.Revision != "" {
		rev = opts.Revision
	}
	if rev == "" {
		rev = hubclient.DefaultRevision
	}
	hub = opts.Hub
	if hub == nil {
		if hub, err = hubclient.New(hubclient.Options{Endpoint: hubclient.EndpointFromEnv(), Token: hubclient.TokenFromEnv()}); err != nil {
			return "", "", nil, err
		}
	}
	return repo, rev, hub, nil
}

// source resolves the source into a local directory, the files to push and
// how to push them. A Hub commit is recorded the way mirror.Pull records it:
// under the Hub's commit id, with the endpoint and the file filters, and
// under no ref when the revision asked for is a commit id.
func source(ctx context.Context, opts Options) (*SourceReport, []mirror.PushFile, mirror.PushOptions, error) {
	if st, err := os.Stat(opts.Source); err == nil && st.IsDir() {
		repo := opts.RepoID
		if repo == "" {
			repo = "local/" + sanitize(filepath.Base(filepath.Clean(opts.Source)))
		}
		if err := mirror.ValidateRepoID(repo); err != nil {
			return nil, nil, mirror.PushOptions{}, fmt.Errorf("%w (name it with --repo-id)", err)
		}
		files, err := mirror.DirFiles(opts.Source, nil)
		if err != nil {
			return nil, nil, mirror.PushOptions{}, err
		}
		r := &SourceReport{Repo: repo, Revision: "main", Dir: opts.Source, Files: len(files)}
		if opts.Revision != "" {
			r.Revision = opts.Revision
		}
		for _, f := range files {
			r.Bytes += f.Size
		}
		return r, files, mirror.PushOptions{Revision: r.Revision,
			Source: mirror.Source{Kind: "dir", Location: r.Dir, Revision: r.Revision}}, nil
	}
	repo, rev, hub, err := hubSource(opts)
	if err != nil {
		return nil, nil, mirror.PushOptions{}, err
	}
	snap, err := hub.Download(ctx, repo, rev, opts.Download)
	if err != nil {
		return nil, nil, mirror.PushOptions{}, err
	}
	po := mirror.PushOptions{Commit: snap.Commit, Source: mirror.Source{Kind: "hub", Location: hub.Endpoint() + "/" + repo,
		Revision: rev, Include: opts.Download.Include, Exclude: opts.Download.Exclude}}
	if hubclient.IsCommitHash(rev) {
		po.NoRef = true
	} else {
		po.Revision = rev
		for _, p := range []string{"refs/heads/", "refs/tags/"} {
			if short, ok := strings.CutPrefix(rev, p); ok {
				po.Revision = short
				break
			}
		}
	}
	r := &SourceReport{Repo: repo, Revision: rev, Commit: snap.Commit, Dir: snap.Dir, Files: len(snap.Files)}
	files := make([]mirror.PushFile, 0, len(snap.Files))
	for _, f := range snap.Files {
		r.Bytes += f.Size
		r.Downloaded += f.Received
		local := f.LocalPath
		pf := mirror.PushFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256, LFS: f.LFS,
			Open: func(context.Context) (io.ReadCloser, error) { return os.Open(local) }}
		if !f.LFS {
			pf.GitOID = f.ETag
		}
		files = append(files, pf)
	}
	return r, files, po, nil
}

// maxNameLength bounds the name part of a local directory's repo id:
// "local/" and the name fit mirror.MaxRepoIDLength.
const maxNameLength = mirror.MaxRepoIDLength - len("local/")

// sanitize makes a directory name usable as the name part of a repo id
// (mirror.ValidateRepoID): other characters become '-', runs of '-' or '.'
// collapse to one, and none starts or ends it.
func sanitize(name string) string {
	var b strings.Builder
	var last byte
	for _, r := range name {
		c := byte('-')
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' {
			c = byte(r)
		}
		if (c == '-' || c == '.') && c == last {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	s := strings.Trim(b.String(), "-.")
	if len(s) > maxNameLength {
		s = strings.Trim(s[:maxNameLength], "-.")
	}
	if s == "" {
		s = "model"
	}
	return s
}

// maxReportSize bounds the validation report of a variant read back from
// the mirror.
const maxReportSize = 16 << 20

// storedReport is what buildVariant reads of a variant's validation report
// (an artifact.Document). A report pushed by other means may lack these
// fields: Passed is then nil, and nothing says the variant failed.
type storedReport struct {
	Passed     *bool           `json:"passed"`
	Validation *forward.Report `json:"validation"`
	Error      string          `json:"error"`
}

// variantReport reads the validation report of a variant in the mirror.
func variantReport(ctx context.Context, s storage.Store, m *mirror.Manifest) (*storedReport, error) {
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
	var doc storedReport
	if json.Unmarshal(data, &doc) != nil {
		return &storedReport{}, nil // not a report of ours
	}
	return &doc, nil
}

// buildVariant builds, validates and pushes one variant, unless the mirror
// already holds it for the source commit.
func buildVariant(ctx context.Context, s storage.Store, opts Options, v Variant, dir string, layout *formats.Layout,
	src SourceReport, work string, progress func(string, string)) (VariantReport, error) {
	vr := VariantReport{Name: v.Name, Revision: v.Name}
	if v.Skip != nil {
		if why := v.Skip(layout); why != "" {
			vr.Status, vr.Reason, vr.Passed = "skipped", why, true
			return vr, nil
		}
	}
	if m, err := mirror.Resolve(ctx, s, src.Repo, v.Name); err == nil && m.Variant != nil && m.Variant.SourceCommit == src.Commit {
		vr.Status, vr.Commit = "present", m.Commit
		vr.Reason = "the mirror holds this variant of commit " + src.Commit
		// It may have been published with Build.Force despite a failed
		// validation: its report says so again.
		doc, err := variantReport(ctx, s, m)
		if err != nil {
			vr.Error = err.Error()
			return vr, err
		}
		vr.Validation, vr.Passed = doc.Validation, doc.Passed == nil || *doc.Passed
		if !vr.Passed {
			err := fmt.Errorf("the mirror holds %s@%s, published despite a failed validation: %s", src.Repo, v.Name, doc.Error)
			if doc.Validation != nil && !doc.Validation.Passed {
				err = fmt.Errorf("the mirror holds %s@%s, published despite a failed validation: %w", src.Repo, v.Name, doc.Validation.Err())
			}
			vr.Error = err.Error()
			return vr, err
		}
		return vr, nil
	} else if err != nil && !errors.Is(err, mirror.ErrRevisionNotFound) && !errors.Is(err, mirror.ErrRepoNotFound) {
		vr.Status, vr.Error = "failed", err.Error()
		return vr, err
	}
	progress(v.Label, "build and validate")
	out := filepath.Join(work, v.Name)
	bo := opts.Build
	bo.Validate.Kind = v.Kind
	thresholds := forward.DefaultThresholds
	if opts.Thresholds != nil {
		thresholds = opts.Thresholds
	}
	th, err := thresholds(v.Kind)
	if err != nil {
		vr.Status, vr.Error = "failed", err.Error()
		return vr, err
	}
	bo.Validate.Thresholds = &th
	res, err := artifact.Build(ctx, dir, out, v.Label, v.Pass, bo)
	if res != nil && res.Document != nil {
		vr.Validation = res.Document.Validation
		vr.Passed = res.Document.Passed
	}
	if err != nil && (res == nil || !res.Published) {
		vr.Status, vr.Error = "failed", err.Error()
		return vr, err
	}
	progress(v.Label, "push")
	files, perr := mirror.DirFiles(out, nil)
	if perr == nil {
		var pr *mirror.PushResult
		pr, perr = mirror.Push(ctx, s, src.Repo, files, mirror.PushOptions{Jobs: opts.Jobs,
			Variant: &mirror.VariantSpec{Name: v.Name, SourceRevision: src.Commit}})
		if perr == nil {
			vr.Commit, vr.Uploaded, vr.UploadedBytes = pr.Commit, pr.Uploaded, pr.UploadedBytes
		}
	}
	if perr != nil {
		vr.Status, vr.Error = "failed", perr.Error()
		return vr, perr
	}
	vr.Status = "pushed"
	if err != nil { // published with --force despite a failed validation
		vr.Error = err.Error()
		return vr, err
	}
	return vr, nil
}
