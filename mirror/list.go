package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/storage"
)

// RepoInfo describes one repo of a mirror: what `hubmirror ls` shows.
type RepoInfo struct {
	// Repo is the qualified repo id ("org/name", "datasets/org/name").
	Repo string `json:"repo"`
	// Type is the repo type ("model", "dataset" or "space").
	Type string `json:"type"`
	// Refs, sorted by name.
	Refs []RefInfo `json:"refs"`
	// Commits, newest first (by manifest creation time).
	Commits []CommitInfo `json:"commits"`
	// Bytes is the size of the repo's distinct blobs (shared blobs count
	// once).
	Bytes int64 `json:"bytes"`
	// Problems names what could not be read (a corrupt manifest or ref);
	// `hubmirror verify` says more.
	Problems []string `json:"problems,omitempty"`
}

// RefInfo is a ref and the commit it names.
type RefInfo struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

// CommitInfo describes one manifest.
type CommitInfo struct {
	Commit string `json:"commit"`
	// Mirrored is when the manifest was written (Manifest.Created).
	Mirrored time.Time `json:"mirrored"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Source   Source    `json:"source"`
	// Refs are the refs naming the commit.
	Refs    []string     `json:"refs,omitempty"`
	Variant *VariantInfo `json:"variant,omitempty"`
}

// VariantInfo is the variant section of a commit with its validation
// verdict.
type VariantInfo struct {
	Name         string `json:"name"`
	SourceCommit string `json:"source_commit"`
	// Verdict is "passed" or "failed" (the report's "passed" field),
	// "unknown" (a report without one) or "unreadable".
	Verdict string `json:"verdict"`
}

// maxReportSize bounds the validation report List reads.
const maxReportSize = 16 << 20

// List calls fn with the description of every repo of the mirror, in repo
// order, one repo at a time (only one repo's manifests are held at once).
// A repo whose manifests or refs are corrupt is still described, with
// Problems saying what could not be read.
func List(ctx context.Context, s storage.Store, fn func(*RepoInfo) error) error {
	repos, err := ListRepos(ctx, s)
	if err != nil {
		return err
	}
	for _, repo := range repos {
		info, err := Describe(ctx, s, repo)
		if err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// existingRepo checks repo's id and lists its commits and refs, as repoKeys;
// ErrRepoNotFound when it has neither.
func existingRepo(ctx context.Context, s storage.Store, repo string) (commits, refs []string, err error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, nil, err
	}
	commits, refs, _, err = repoKeys(ctx, s, repo)
	if err != nil {
		return nil, nil, err
	}
	if len(commits) == 0 && len(refs) == 0 {
		return nil, nil, fmt.Errorf("mirror: %s: %w", repo, ErrRepoNotFound)
	}
	return commits, refs, nil
}

// repoKeys lists the commits with a manifest key and the ref names of repo.
// Keys under the repo that are neither are returned as strays.
func repoKeys(ctx context.Context, s storage.Store, repo string) (commits []string, refs []string, strays []string, err error) {
	dir := repoDir(repo) + "/"
	err = s.List(ctx, dir, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, dir)
		if name, ok := strings.CutPrefix(rest, "manifests/"); ok {
			if c, ok := strings.CutSuffix(name, ".json"); ok && IsCommitID(c) {
				commits = append(commits, c)
				return nil
			}
		}
		if name, ok := strings.CutPrefix(rest, "refs/"); ok {
			if n, err := url.PathUnescape(name); err == nil && ValidateRevision(n) == nil && url.PathEscape(n) == name {
				refs = append(refs, n)
				return nil
			}
		}
		strays = append(strays, i.Key)
		return nil
	})
	sort.Strings(commits)
	sort.Strings(refs)
	sort.Strings(strays)
	return commits, refs, strays, err
}

// Describe returns the description of repo; ErrRepoNotFound when it has
// no manifest.
func Describe(ctx context.Context, s storage.Store, repo string) (*RepoInfo, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	commits, refs, _, err := repoKeys(ctx, s, repo)
	if err != nil {
		return nil, err
	}
	if len(commits) == 0 {
		return nil, fmt.Errorf("mirror: %s: %w", repo, ErrRepoNotFound)
	}
	repoType, _ := hubproto.SplitRepo(repo)
	info := &RepoInfo{Repo: repo, Type: repoType, Refs: []RefInfo{}, Commits: []CommitInfo{}}
	named := map[string][]string{}
	for _, name := range refs {
		c, err := ReadRef(ctx, s, repo, name)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return nil, err
			}
			info.Problems = append(info.Problems, err.Error())
			continue
		}
		info.Refs = append(info.Refs, RefInfo{Name: name, Commit: c})
		named[c] = append(named[c], name)
	}
	blobs := map[string]bool{}
	for _, c := range commits {
		m, err := ReadManifest(ctx, s, repo, c)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return nil, err
			}
			info.Problems = append(info.Problems, err.Error())
			continue
		}
		ci := CommitInfo{Commit: c, Mirrored: m.Created, Files: len(m.Files), Bytes: m.TotalSize(), Source: m.Source, Refs: named[c]}
		if v := m.Variant; v != nil {
			ci.Variant = &VariantInfo{Name: v.Name, SourceCommit: v.SourceCommit, Verdict: reportVerdict(ctx, s, m)}
		}
		for _, f := range m.Files {
			if !blobs[f.SHA256] {
				blobs[f.SHA256] = true
				info.Bytes += f.Size
			}
		}
		info.Commits = append(info.Commits, ci)
	}
	for _, r := range info.Refs {
		if !slicesContainsCommit(info.Commits, r.Commit) {
			info.Problems = append(info.Problems, fmt.Sprintf("ref %s names commit %s, which has no manifest", r.Name, r.Commit))
		}
	}
	sort.SliceStable(info.Commits, func(i, j int) bool { return info.Commits[i].Mirrored.After(info.Commits[j].Mirrored) })
	return info, nil
}

func slicesContainsCommit(cs []CommitInfo, c string) bool {
	for _, ci := range cs {
		if ci.Commit == c {
			return true
		}
	}
	return false
}

// reportVerdict reads a variant's validation report (verified) and returns
// its verdict.
func reportVerdict(ctx context.Context, s storage.Store, m *Manifest) string {
	e, ok := m.File(m.Variant.Report)
	if !ok || e.Size > maxReportSize {
		return "unreadable"
	}
	rc, err := OpenFile(ctx, s, e, 0, -1)
	if err != nil {
		return "unreadable"
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return "unreadable"
	}
	var r struct {
		Passed *bool `json:"passed"`
	}
	if json.Unmarshal(data, &r) != nil {
		return "unreadable"
	}
	switch {
	case r.Passed == nil:
		return "unknown"
	case *r.Passed:
		return "passed"
	default:
		return "failed"
	}
}
