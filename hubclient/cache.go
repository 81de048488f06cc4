package hubclient

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The cache layout is huggingface_hub's (file_download.py, _tree_cache.py):
//
//	<cache>/CACHEDIR.TAG
//	<cache>/.locks/models--org--name/<etag>.lock
//	<cache>/models--org--name/blobs/<etag>                   verified content
//	<cache>/models--org--name/blobs/<etag>.incomplete        partial download (+ .ranges record, ours)
//	<cache>/models--org--name/refs/<revision>                commit hash, no newline
//	<cache>/models--org--name/snapshots/<commit>/<path>      relative symlink to ../../blobs/<etag>
//	<cache>/models--org--name/.no_exist/<commit>/<path>      empty: the file does not exist at that commit
//	<cache>/models--org--name/trees/<commit>.json            the commit's file listing
//
// The ETag of an LFS file is its sha256; of a file stored in git, its git
// blob sha1.

// cachedirTag is the content huggingface_hub writes to CACHEDIR.TAG.
const cachedirTag = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file is a cache directory tag created by huggingface_hub.\n" +
	"# For information about cache directory tags, see:\n" +
	"#\thttps://bford.info/cachedir/\n"

// cacheRepo addresses one repository's folder in a cache.
type cacheRepo struct {
	cacheDir string
	repoID   string
	dir      string
}

func newCacheRepo(cacheDir, repoID string) cacheRepo {
	return cacheRepo{cacheDir: cacheDir, repoID: repoID, dir: filepath.Join(cacheDir, RepoFolderName(repoID))}
}

func (r cacheRepo) blobPath(etag string) string { return filepath.Join(r.dir, "blobs", etag) }
func (r cacheRepo) snapshotDir(commit string) string {
	return filepath.Join(r.dir, "snapshots", commit)
}
func (r cacheRepo) pointerPath(commit, path string) string {
	return filepath.Join(r.snapshotDir(commit), filepath.FromSlash(path))
}
func (r cacheRepo) refPath(rev string) string {
	return filepath.Join(r.dir, "refs", filepath.FromSlash(rev))
}
func (r cacheRepo) noExistPath(commit, path string) string {
	return filepath.Join(r.dir, ".no_exist", commit, filepath.FromSlash(path))
}
func (r cacheRepo) treePath(commit string) string {
	return filepath.Join(r.dir, "trees", commit+".json")
}
func (r cacheRepo) lockPath(etag string) string {
	return filepath.Join(r.cacheDir, ".locks", RepoFolderName(r.repoID), etag+".lock")
}

// symlinkTarget is the relative target of a snapshot pointer: "../../blobs/<etag>"
// with one more "../" per directory level of path.
func symlinkTarget(path, etag string) string {
	return strings.Repeat("../", 2+strings.Count(path, "/")) + "blobs/" + etag
}

// readRef returns the commit a ref file names, or "" when there is none.
func (r cacheRepo) readRef(rev string) string {
	data, err := os.ReadFile(r.refPath(rev))
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(data))
	if !commitRe.MatchString(c) {
		return ""
	}
	return c
}

// tempName is a name for a temporary file in the repository folder, which
// huggingface_hub's cache scanner never enumerates (a stray file in refs/ or
// snapshots/ would read as a ref or a broken file to it).
func (r cacheRepo) tempName(kind string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(r.dir, ".tmp-"+kind+"-"+hex.EncodeToString(b[:]))
}

// writeRef records that rev points to commit (atomically; no newline, as
// huggingface_hub writes it). Nothing is written when rev is the commit.
func (r cacheRepo) writeRef(rev, commit string) error {
	if rev == commit {
		return nil
	}
	if r.readRef(rev) == commit {
		return nil
	}
	p := r.refPath(rev)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := r.tempName("ref")
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing ref %s: %w", rev, err)
	}
	return nil
}

// link makes the snapshot pointer for path a relative symlink to the blob,
// atomically (symlink at a temporary name, then rename).
func (r cacheRepo) link(commit, path, etag string) error {
	p := r.pointerPath(commit, path)
	target := symlinkTarget(path, etag)
	if cur, err := os.Readlink(p); err == nil && cur == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := r.tempName("link")
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("%s: creating symlink: %w", path, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: placing symlink: %w", path, err)
	}
	return nil
}

// markNoExist records that path does not exist at commit.
func (r cacheRepo) markNoExist(commit, path string) error {
	if ValidateRepoPath(path) != nil || !commitRe.MatchString(commit) {
		return nil
	}
	p := r.noExistPath(commit, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// ensureCacheRoot creates the cache directory and its CACHEDIR.TAG.
func ensureCacheRoot(cacheDir string) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	tag := filepath.Join(cacheDir, "CACHEDIR.TAG")
	if _, err := os.Stat(tag); errors.Is(err, fs.ErrNotExist) {
		_ = writeFileAtomic(tag, []byte(cachedirTag), 0o644)
	}
	return nil
}

// treeCacheEntry is one file in trees/<commit>.json.
type treeCacheEntry struct {
	Size      int64  `json:"size"`
	BlobID    string `json:"blob_id"`
	LFSSHA256 string `json:"lfs_sha256,omitempty"`
	LFSSize   *int64 `json:"lfs_size,omitempty"`
	XetHash   string `json:"xet_hash,omitempty"`
}

// encodeTreeCache renders a listing byte for byte as huggingface_hub's
// write_tree_cache does (json.dump with indent=1 and ensure_ascii, files
// sorted by path, keys in its order).
func encodeTreeCache(files []RepoFile) []byte {
	sorted := append([]RepoFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b bytes.Buffer
	b.WriteString("{\n \"format_version\": 1,\n \"files\": {")
	for i, f := range sorted {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  ")
		pyString(&b, f.Path)
		b.WriteString(": {\n   \"size\": ")
		b.WriteString(strconv.FormatInt(f.Size, 10))
		b.WriteString(",\n   \"blob_id\": ")
		pyString(&b, f.BlobID)
		if f.LFS != nil {
			b.WriteString(",\n   \"lfs_sha256\": ")
			pyString(&b, f.LFS.SHA256)
			b.WriteString(",\n   \"lfs_size\": ")
			b.WriteString(strconv.FormatInt(f.LFS.Size, 10))
		}
		if f.XetHash != "" {
			b.WriteString(",\n   \"xet_hash\": ")
			pyString(&b, f.XetHash)
		}
		b.WriteString("\n  }")
	}
	if len(sorted) > 0 {
		b.WriteString("\n ")
	}
	b.WriteString("}\n}")
	return b.Bytes()
}

// pyString writes s as Python's json module does with ensure_ascii=True.
func pyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || r >= 0x7f && r < 0x10000:
				fmt.Fprintf(b, `\u%04x`, r)
			case r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// writeTreeCache stores the listing of commit under dir/trees/.
func writeTreeCache(path string, files []RepoFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, encodeTreeCache(files), 0o644)
}

// readTreeCache loads a listing written by writeTreeCache or by
// huggingface_hub; nil when absent or unusable.
func readTreeCache(path string) []RepoFile {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > maxJSONBytes || !utf8.Valid(data) {
		return nil
	}
	var doc struct {
		FormatVersion int                       `json:"format_version"`
		Files         map[string]treeCacheEntry `json:"files"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.FormatVersion != 1 || doc.Files == nil {
		return nil
	}
	files := make([]RepoFile, 0, len(doc.Files))
	for p, e := range doc.Files {
		f := RepoFile{Path: p, Size: e.Size, BlobID: e.BlobID, XetHash: e.XetHash}
		if e.LFSSHA256 != "" {
			f.LFS = &LFSInfo{SHA256: e.LFSSHA256, Size: e.Size}
			if e.LFSSize != nil {
				f.LFS.Size = *e.LFSSize
			}
		}
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// FindSnapshot returns the snapshot directory of repoID at revision (a
// branch, tag or commit) in cacheDir, without any network access. It fails
// with ErrNotCached when the cache has no such snapshot. When the cache
// holds the commit's file listing (trees/<commit>.json), every listed file
// must be present, otherwise the snapshot counts as incomplete.
func FindSnapshot(cacheDir, repoID, revision string) (string, error) {
	dir, _, err := findSnapshot(cacheDir, repoID, revision, nil)
	return dir, err
}

func findSnapshot(cacheDir, repoID, revision string, filter *Filter) (dir, commit string, err error) {
	if revision, err = checkRef(repoID, revision); err != nil {
		return "", "", err
	}
	r := newCacheRepo(cacheDir, repoID)
	commit = revision
	if !IsCommitHash(revision) {
		commit = r.readRef(revision)
		if commit == "" {
			return "", "", fmt.Errorf("%w: %s@%s: no ref %q in %s", ErrNotCached, repoID, revision, revision, r.dir)
		}
	}
	dir = r.snapshotDir(commit)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("%w: %s@%s: no snapshot %s in %s", ErrNotCached, repoID, revision, commit, r.dir)
	}
	if files := readTreeCache(r.treePath(commit)); files != nil {
		var missing []string
		for _, f := range files {
			if !filter.Match(f.Path) || ValidateRepoPath(f.Path) != nil {
				continue
			}
			if st, err := os.Stat(r.pointerPath(commit, f.Path)); err != nil || !st.Mode().IsRegular() {
				missing = append(missing, f.Path)
			}
		}
		if len(missing) > 0 {
			sample := strings.Join(missing[:min(3, len(missing))], ", ")
			return "", "", fmt.Errorf("%w: %s@%s: the cached snapshot is incomplete: %d file(s) missing (%s); pull again with network access",
				ErrNotCached, repoID, revision, len(missing), sample)
		}
	}
	return dir, commit, nil
}

// CachedFile returns the path of one file of a cached snapshot, without any
// network access. It fails with ErrEntryNotFound when the cache recorded
// that the file does not exist at that commit (.no_exist), and with
// ErrNotCached when the cache does not know.
func CachedFile(cacheDir, repoID, revision, path string) (string, error) {
	if err := ValidateRepoPath(path); err != nil {
		return "", err
	}
	if err := ValidateRepoID(repoID); err != nil {
		return "", err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	r := newCacheRepo(cacheDir, repoID)
	commit := revision
	if !IsCommitHash(revision) {
		if commit = r.readRef(revision); commit == "" {
			return "", fmt.Errorf("%w: %s@%s: no ref %q", ErrNotCached, repoID, revision, revision)
		}
	}
	if _, err := os.Stat(r.noExistPath(commit, path)); err == nil {
		return "", fmt.Errorf("%w: %s@%s: %s (recorded in the cache)", ErrEntryNotFound, repoID, revision, path)
	}
	p := r.pointerPath(commit, path)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s@%s: %s", ErrNotCached, repoID, revision, path)
	}
	return p, nil
}
