package hubclient

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hubmirror/hubmirror/hubproto"
)

// DefaultRevision is the branch used when no revision is given.
const DefaultRevision = "main"

var (
	commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	repoPart = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)
)

// IsCommitHash reports whether rev is a full 40-hex commit hash (the only
// revisions that never move).
func IsCommitHash(rev string) bool { return commitRe.MatchString(rev) }

// ValidateRepoID checks a repo id ("name" or "org/name", after "datasets/"
// or "spaces/" for a dataset or space: see hubproto.SplitRepo) the way the
// Hub does: letters, digits, '_', '-', '.', at most one '/', no "--" or "..",
// parts neither starting nor ending with '-' or '.', at most 96 characters.
func ValidateRepoID(qualified string) error {
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", ErrInvalidRepoID, quoteServer(qualified), why) }
	_, id := hubproto.SplitRepo(qualified)
	if id == "" {
		return bad("empty")
	}
	if len(id) > 96 {
		return bad("longer than 96 characters")
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return bad(`"--" and ".." are not allowed`)
	}
	parts := strings.Split(id, "/")
	if len(parts) > 2 {
		return bad("expected name or org/name")
	}
	for _, p := range parts {
		if !repoPart.MatchString(p) {
			return bad("only letters, digits, '-', '_' and '.' are allowed in org and name")
		}
		if strings.HasPrefix(p, "-") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, "-") || strings.HasSuffix(p, ".") {
			return bad("org and name may not start or end with '-' or '.'")
		}
	}
	return nil
}

// ValidateRevision checks a revision name: a branch, tag or commit. Branch
// names may contain '/' (refs/pr/1) and become paths under refs/ in the
// cache, so the same rules as repository paths apply.
func ValidateRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("%w: empty revision", ErrInvalidRepoID)
	}
	if err := ValidateRepoPath(rev); err != nil {
		return fmt.Errorf("%w: revision %s cannot be stored in the cache: %v", ErrInvalidRepoID, quoteServer(rev), err)
	}
	return nil
}

// ParseRepoRef splits "org/name[@rev]" into a validated repo id and revision
// (DefaultRevision when absent). The revision may itself contain '/' or '@'.
func ParseRepoRef(ref string) (repoID, revision string, err error) {
	repoID, revision = ref, DefaultRevision
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		repoID, revision = ref[:i], ref[i+1:]
	}
	if err := ValidateRepoID(repoID); err != nil {
		return "", "", err
	}
	if err := ValidateRevision(revision); err != nil {
		return "", "", err
	}
	return repoID, revision, nil
}

// MaxPathBytes is the longest repository path the client accepts, far
// beyond what the Hub stores.
const MaxPathBytes = 1024

// ValidateRepoPath checks a path that came from the server before it is used
// as a path on disk. It refuses empty paths, paths longer than MaxPathBytes,
// absolute paths, backslashes, NUL and other control characters, empty, "."
// and ".." segments, Windows drive segments ("C:") and the
// .cache/huggingface folder that holds local-dir metadata. Errors wrap
// ErrUnsafePath.
func ValidateRepoPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrUnsafePath, quoteServer(p), why) }
	switch {
	case p == "":
		return bad("empty path")
	case len(p) > MaxPathBytes:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathBytes))
	case strings.HasPrefix(p, "/"):
		return bad("absolute path")
	case strings.ContainsRune(p, '\\'):
		return bad("backslash in path")
	case strings.ContainsRune(p, 0):
		return bad("NUL byte in path")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("control character in path")
		}
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case s == "":
			if i == len(segs)-1 {
				return bad("trailing '/'")
			}
			return bad("empty path segment")
		case s == "..":
			return bad("'..' segment")
		case s == ".":
			return bad("'.' segment")
		case len(s) >= 2 && s[1] == ':' && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z'):
			return bad("drive letter segment")
		}
	}
	if len(segs) >= 2 && segs[0] == ".cache" && segs[1] == "huggingface" {
		return bad("the .cache/huggingface folder is reserved for download metadata")
	}
	return nil
}

// quote percent-encodes s the way Python's urllib.parse.quote does: letters,
// digits, "_.-~" and the bytes in safe stay, everything else becomes %XX.
// huggingface_hub builds its URLs with it, so we match it byte for byte.
func quote(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~", c) >= 0 ||
			strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// RepoFolderName returns the cache folder name of a repo:
// "models--org--name", "datasets--org--name" for "datasets/org/name".
func RepoFolderName(repoID string) string { return hubproto.FolderName(repoID) }
