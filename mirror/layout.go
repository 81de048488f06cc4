// Package mirror lays model repositories out in a storage.Store so that
// they can be served back to Hugging Face clients: content-addressed blobs
// shared across repos and revisions, one manifest per repo and commit, refs
// for branch, tag and variant names.
//
// # Layout
//
//	blobs/sha256/<sha256>                          file content, by its SHA-256 (64 hex)
//	blobs/chunks/<sha256>                          chunk hashes of that blob (optional)
//	repos/models--<org>--<name>/manifests/<commit>.json   one per commit (40 hex)
//	repos/models--<org>--<name>/refs/<revision>    the commit a branch, tag or variant names
//	repos/datasets--<org>--<name>/...              the same for a dataset
//	repos/spaces--<org>--<name>/...                and for a space
//	leases/<push id>.list                          a running push relies on these blobs (see GC)
//	leases/<push id>/<sha256>                      a running push is uploading this blob (see GC)
//	gc/running/<gc id>, gc/done/<gc id>            a GC is running, or ended (see GC)
//
// The repo directory is named as in the Hugging Face cache: the repo type's
// plural and "--" ("models--", "datasets--", "spaces--"), then the repo id
// with "/" replaced by "--" (repo ids cannot contain "--", so the name is
// unambiguous; a repo id without an org, "gpt2", becomes "models--gpt2").
// Types are kept apart: a model and a dataset of the same name are two
// repos. Everywhere in this package a repo is named by its qualified id
// (hubproto.SplitRepo): a model by its id, a dataset by "datasets/" and its
// id, a space by "spaces/" and its id; blobs are shared across types. A
// revision name is stored path-escaped (url.PathEscape:
// "refs/pr/1" becomes "refs%2Fpr%2F1"), so names that nest ("a" and "a/b")
// never collide as files and directories. A ref object holds the 40-hex
// commit and nothing else, like refs/<name> in the Hugging Face cache.
//
// A blob larger than one chunk (ChunkSize, 8 MiB) has a chunk-hash sidecar
// beside it, in blobs/chunks/ rather than blobs/sha256/ so that the blob
// directory holds content only: a small binary object (magic "HMCHUNKS",
// a version, the chunk size, the blob's size and sha256, the sha256 of each
// chunk, and a sha256 of all that) with which Server verifies a byte range
// by reading only the chunks that cover it. A sidecar is an optimisation:
// it is read strictly and bounded by the blob's size, and a blob without
// one, or with a malformed one, is verified whole as before. Sidecars are
// not listed in manifests and do not feed commit ids.
//
// A manifest (see Manifest) lists every file of the commit: path, size,
// sha256, git oid (the blob id the Hub reports: the content's git blob SHA-1
// for a regular file, the LFS pointer's for an LFS file), and whether it is
// an LFS file; plus the commit, the creation time and where it came from.
//
// # Variants
//
// A converted or quantized model derived from a mirrored commit is stored
// beside its source, in the same repo directory and sharing its blobs, as its
// own revision: a manifest with a Variant section (name, source commit, and
// the path of its validation report, validation.json, which is a file of the
// variant like any other) and a ref under the variant's name ("int8",
// "fp16"). A client asks for revision "int8" as it would for a branch. Its
// commit id is derived from the content (see CommitID), so it is 40 hex
// digits like any commit and clients that insist on a commit hash accept it.
//
// # Write order
//
// Push uploads blobs first (each verified against its sha256 before it
// becomes visible, see storage.Store.Put; a blob's chunk sidecar, hashed
// while the blob streams, right after it), then the manifest, then the refs.
// A manifest therefore exists only when all its blobs do, and a ref only
// when its manifest does. An interrupted push leaves at most some complete
// blobs and no manifest; running it again uploads only what is missing.
//
// # Operations
//
// Describe and List say what a mirror holds (`hubmirror ls`); Verify checks
// all of it and names every damaged object (`hubmirror verify`); Remove
// drops refs and the manifests no ref reaches (`hubmirror rm`); GC drops
// old commits and deletes the blobs no manifest lists (`hubmirror gc`).
// GC runs safely beside pushes: a push leases the blobs it relies on (one
// list per push, and one lease per blob it uploads) and, when a GC ran
// meanwhile, checks its blobs again before it writes its manifest (see GC
// and lease.go).
//
// # Sources
//
// DirFiles lists a model directory for Push; ManifestFiles a revision of
// another mirror. Package source resolves every kind of source (a
// directory, a snapshot of the Hugging Face cache with the Hub's commit and
// the cache's knowledge of LFS files, a mirror revision) into these files
// and pushes them with one ref policy. Pull streams a revision from
// a Hub (hubclient) straight into storage, without a local copy, keeping
// the Hub's commit id; like Push it is idempotent and resumable.
//
// # Reading
//
// Resolve turns a revision (a ref name, a full commit id, "refs/heads/X",
// "refs/convert/X") into a Manifest. Blob reads are verified: OpenFile
// streams a whole file through a storage.VerifyReader, which fails before it
// hands out the last bytes of a blob whose hash does not match the manifest,
// and Server verifies a range of a blob chunk by chunk against its sidecar,
// or the whole blob before it serves a range of one without a sidecar (see
// Server for the rules and how verification results are cached). Materialize writes a
// revision into a local directory, verified. A revision of a mirror is
// named by a ModelURL ("s3://bucket/prefix#org/name@rev"); ResolveModel
// turns any MODEL argument of the command line (a local path, a repo id in
// the Hugging Face cache, a ModelURL) into a local model directory.
package mirror

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/hubproto"
)

// Errors callers test with errors.Is.
var (
	// ErrRepoNotFound: the mirror has no manifest for the repo.
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the repo exists but the revision names no
	// manifest.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the manifest has no such file or directory.
	ErrEntryNotFound = errors.New("entry not found")
	// ErrCorrupt: something in the mirror is not what it must be (a
	// manifest that does not parse, a blob whose hash or size does not
	// match its manifest, a missing blob).
	ErrCorrupt = errors.New("mirror is corrupt")
	// ErrInvalid: a malformed argument (repo id, revision name, path).
	ErrInvalid = errors.New("invalid argument")
)

// Key prefixes of the layout.
const (
	blobPrefix   = "blobs/sha256/"
	chunksPrefix = "blobs/chunks/"
	repoPrefix   = "repos/"
)

// BlobKey returns the key of the blob with the given sha256.
func BlobKey(sha256 string) string { return blobPrefix + sha256 }

// ChunksKey returns the key of the chunk-hash sidecar of the blob with the
// given sha256 (see the package doc's Layout).
func ChunksKey(sha256 string) string { return chunksPrefix + sha256 }

// repoDir returns "repos/models--org--name" ("repos/datasets--org--name"
// for "datasets/org/name").
func repoDir(repo string) string {
	return repoPrefix + hubproto.FolderName(repo)
}

// ManifestKey returns the key of a repo's manifest for commit.
func ManifestKey(repo, commit string) string {
	return repoDir(repo) + "/manifests/" + commit + ".json"
}

// RefKey returns the key of a repo's ref named rev.
func RefKey(repo, rev string) string {
	return repoDir(repo) + "/refs/" + url.PathEscape(rev)
}

// repoFromDir parses the directory name under repos/ back into a qualified
// repo id.
func repoFromDir(dir string) (string, bool) {
	id, ok := hubproto.ParseFolderName(dir)
	if !ok || ValidateRepoID(id) != nil || hubproto.FolderName(id) != dir {
		return "", false
	}
	return id, true
}

// MaxRepoIDLength is the Hub's limit on a repo id.
const MaxRepoIDLength = 96

// ValidateRepoID checks a qualified repo id (a model's id, or a dataset's
// or space's after "datasets/" or "spaces/") the way the Hub does: "name"
// or "org/name", each part of ASCII letters, digits, '-', '_' and '.', not
// starting or ending with '-' or '.', without "--" or "..", at most 96
// characters.
func ValidateRepoID(qualified string) error {
	bad := func(why string) error { return fmt.Errorf("mirror: repo id %q: %s: %w", qualified, why, ErrInvalid) }
	_, id := hubproto.SplitRepo(qualified)
	if id == "" {
		return bad("empty")
	}
	if len(id) > MaxRepoIDLength {
		return bad("too long")
	}
	parts := strings.Split(id, "/")
	if len(parts) > 2 {
		return bad("more than one '/'")
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return bad("contains '--' or '..'")
	}
	for _, p := range parts {
		if p == "" {
			return bad("empty part")
		}
		for _, c := range p {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				return bad(fmt.Sprintf("character %q", c))
			}
		}
		if strings.HasPrefix(p, "-") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, "-") || strings.HasSuffix(p, ".") {
			return bad("part starts or ends with '-' or '.'")
		}
	}
	return nil
}

// MaxRevisionLength bounds revision names.
const MaxRevisionLength = 200

// ValidateRevision checks a branch, tag or variant name: non-empty, at most
// MaxRevisionLength bytes, no control characters, spaces or any of ~^:?*[\,
// no "..", no leading or trailing '/' or '.', no "//", and not 40 hex digits
// (that would read as a commit id).
func ValidateRevision(rev string) error {
	bad := func(why string) error { return fmt.Errorf("mirror: revision %q: %s: %w", rev, why, ErrInvalid) }
	switch {
	case rev == "":
		return bad("empty")
	case len(rev) > MaxRevisionLength:
		return bad("too long")
	case IsCommitID(rev):
		return bad("looks like a commit id")
	case strings.Contains(rev, ".."), strings.Contains(rev, "//"), strings.Contains(rev, "@{"):
		return bad("contains '..', '//' or '@{'")
	case strings.HasPrefix(rev, "/"), strings.HasSuffix(rev, "/"), strings.HasPrefix(rev, "."), strings.HasSuffix(rev, "."):
		return bad("starts or ends with '/' or '.'")
	}
	for _, c := range rev {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("~^:?*[\\", c) {
			return bad(fmt.Sprintf("character %q", c))
		}
	}
	return nil
}

// IsCommitID reports whether s is 40 lowercase hex digits.
func IsCommitID(s string) bool { return isHex(s, 40) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MaxPathLength bounds file paths in a manifest.
const MaxPathLength = 1024

// ValidatePath checks a file path of a repo: relative, '/'-separated, valid
// UTF-8 without control characters or backslashes, no empty, "." or ".."
// segments, at most MaxPathLength bytes. A client writes these paths to its
// disk, so a path that could escape its directory is refused.
func ValidatePath(p string) error {
	bad := func(why string) error { return fmt.Errorf("mirror: path %q: %s: %w", p, why, ErrInvalid) }
	if p == "" || len(p) > MaxPathLength {
		return bad("empty or too long")
	}
	if !utf8.ValidString(p) {
		return bad("not valid UTF-8")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return bad("control character or backslash")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("empty, '.' or '..' segment")
		}
	}
	return nil
}
