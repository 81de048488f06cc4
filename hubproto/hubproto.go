// Package hubproto declares, once, what goes over the wire in the Hugging
// Face Hub's download protocol as hubmirror speaks it: the header names and
// error codes, the JSON of model info, tree listings and refs, and how a
// Range header is read. The client (hubclient), the test hub
// (hubclient/hubtest) and the mirror's server (mirror.Server) use these
// declarations, and package prototest checks that both servers answer alike.
//
// The endpoints, for models:
//
//	GET  /api/models/{repo}[/revision/{rev}][?blobs=true]   ModelInfo
//	GET  /api/models/{repo}/tree/{rev}[/{path}][?recursive=true][&expand=true]  []TreeEntry,
//	     paginated with a Link: <url>; rel="next" header
//	POST /api/models/{repo}/paths-info/{rev}                 []TreeEntry of the paths asked for
//	GET  /api/models/{repo}/refs                             GitRefs
//	HEAD /{repo}/resolve/{rev}/{path}                        headers only
//	GET  /{repo}/resolve/{rev}/{path}                        content, or a redirect (LFS)
//
// and the same for datasets and spaces, with /api/datasets/ and
// /api/spaces/ and /datasets/{repo}/resolve/..., /spaces/{repo}/resolve/...
// (see repotype.go: a repo is named by its qualified id, "datasets/org/name").
//
// A revision in a URL is escaped as one path segment ("refs%2Fpr%2F1").
package hubproto

import (
	"strconv"
	"strings"
)

// Header names.
const (
	// HeaderRepoCommit is the commit a revision resolved to, on /resolve
	// answers (also on EntryNotFound errors).
	HeaderRepoCommit = "X-Repo-Commit"
	// HeaderLinkedETag is the sha256 of an LFS file, quoted, on /resolve
	// answers; it wins over ETag.
	HeaderLinkedETag = "X-Linked-Etag"
	// HeaderLinkedSize is the size of an LFS file, on /resolve answers; it
	// wins over Content-Length (which a redirect does not have).
	HeaderLinkedSize = "X-Linked-Size"
	// HeaderErrorCode is the kind of an error answer (ErrorRepoNotFound ...).
	HeaderErrorCode = "X-Error-Code"
	// HeaderErrorMessage is the message of an error answer.
	HeaderErrorMessage = "X-Error-Message"
	// HeaderRequestID identifies a request, for bug reports.
	HeaderRequestID = "X-Request-Id"
	// HeaderXetHash is the Xet content hash of a Xet-backed file, on the
	// Hub's /resolve answers, with a Link header of relation LinkRelXetAuth
	// naming where a Xet client gets its token. A client without Xet
	// support follows the redirect (Location) instead; hubmirror's server
	// never sends either.
	HeaderXetHash = "X-Xet-Hash"
	// LinkRelXetAuth is the relation of the Link to the Xet token route.
	LinkRelXetAuth = "xet-auth"
)

// Values of HeaderErrorCode.
const (
	ErrorRepoNotFound     = "RepoNotFound"
	ErrorRevisionNotFound = "RevisionNotFound"
	ErrorEntryNotFound    = "EntryNotFound"
	ErrorGatedRepo        = "GatedRepo"
)

// InvalidCredentials is the HeaderErrorMessage of a 401 answer to a request
// whose token is not valid (rather than missing).
const InvalidCredentials = "Invalid credentials in Authorization header"

// ErrorBody is the JSON body of an error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// LFS describes a file stored with Git LFS: in a sibling the content's
// sha256 is in SHA256 ("sha256"), in a tree entry in OID ("oid").
type LFS struct {
	SHA256      string `json:"sha256,omitempty"`
	OID         string `json:"oid,omitempty"`
	Size        int64  `json:"size"`
	PointerSize int64  `json:"pointerSize"`
}

// ContentSHA256 returns the sha256 of the content, from whichever field
// carries it.
func (l *LFS) ContentSHA256() string {
	if l.SHA256 != "" {
		return l.SHA256
	}
	return l.OID
}

// Sibling is one file in ModelInfo. Size, BlobID and LFS are sent with
// ?blobs=true.
type Sibling struct {
	RFilename string `json:"rfilename"`
	Size      *int64 `json:"size,omitempty"`
	BlobID    string `json:"blobId,omitempty"`
	LFS       *LFS   `json:"lfs,omitempty"`
}

// ModelInfo is the answer of GET /api/models/{repo}[/revision/{rev}].
type ModelInfo struct {
	ID      string `json:"id"`
	ModelID string `json:"modelId,omitempty"`
	Author  string `json:"author,omitempty"`
	// SHA is the commit the revision resolved to.
	SHA          string `json:"sha"`
	LastModified string `json:"lastModified,omitempty"`
	CreatedAt    string `json:"createdAt,omitempty"`
	Private      bool   `json:"private"`
	Disabled     bool   `json:"disabled"`
	// Gated is false, or "auto" or "manual".
	Gated       any       `json:"gated"`
	Downloads   int64     `json:"downloads"`
	Likes       int64     `json:"likes"`
	Tags        []string  `json:"tags"`
	Siblings    []Sibling `json:"siblings"`
	UsedStorage int64     `json:"usedStorage,omitempty"`
}

// Tree entry types.
const (
	TypeFile      = "file"
	TypeDirectory = "directory"
)

// TreeEntry is one entry of a tree listing. For a file, OID is its git blob
// id (of the pointer, for an LFS file) and Size its content size.
type TreeEntry struct {
	Type    string `json:"type"`
	OID     string `json:"oid"`
	Size    int64  `json:"size"`
	Path    string `json:"path"`
	LFS     *LFS   `json:"lfs,omitempty"`
	XetHash string `json:"xetHash,omitempty"`
	// LastCommit is sent with ?expand=true (tree) or expand=true
	// (paths-info).
	LastCommit *LastCommit `json:"lastCommit,omitempty"`
}

// GitRef is a ref in GitRefs.
type GitRef struct {
	Name         string `json:"name"`
	Ref          string `json:"ref"`
	TargetCommit string `json:"targetCommit"`
}

// GitRefs is the answer of GET /api/models/{repo}/refs.
type GitRefs struct {
	Branches     []GitRef `json:"branches"`
	Tags         []GitRef `json:"tags"`
	Converts     []GitRef `json:"converts"`
	PullRequests []GitRef `json:"pullRequests"`
}

// ParseRange reads a Range header for a resource of size bytes, as RFC 9110
// says: ok is false when the header is not one byte range this protocol
// honours (malformed, another unit, several ranges), and the server then
// ignores it and sends the whole resource; satisfiable is false when the
// range lies outside the resource (416). Otherwise the range is offset and
// length bytes ("bytes=a-b" with b cut at the end, "bytes=a-", or the last
// n bytes with "bytes=-n").
func ParseRange(h string, size int64) (offset, length int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, false
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return 0, 0, false, false
		}
		end = min(end, e)
	}
	if start >= size {
		return 0, 0, true, false
	}
	return start, end - start + 1, true, true
}
