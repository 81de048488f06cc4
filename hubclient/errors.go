package hubclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/hubproto"
)

// Sentinel errors. Every error the client returns for one of these conditions
// wraps the matching sentinel, so callers test with errors.Is.
var (
	// ErrRepoNotFound: the repository does not exist, or it is private and the
	// request carried no token (or one without access).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the repository exists but the branch, tag or commit does not.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the revision exists but the file does not.
	ErrEntryNotFound = errors.New("file not found in repository")
	// ErrGatedRepo: the repository is gated and the token is missing or has not been granted access.
	ErrGatedRepo = errors.New("gated repository")
	// ErrUnauthorized: the server answered 401 (token missing or invalid).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the server answered 403 (token lacks permission).
	ErrForbidden = errors.New("forbidden")
	// ErrServer: the server kept failing (5xx, 408, 429) after every retry, or
	// sent a response that breaks the protocol (missing X-Repo-Commit, bad ETag).
	ErrServer = errors.New("hub server error")
	// ErrIntegrity: downloaded bytes do not match the expected size or hash.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrUnsafePath: a server-supplied path could escape the destination
	// (absolute, "..", backslash, NUL, ...).
	ErrUnsafePath = errors.New("unsafe path from server")
	// ErrNotCached: offline mode, and the cache does not hold what was asked for.
	ErrNotCached = errors.New("not in the local cache")
	// ErrInvalidRepoID: a repo id or revision that the Hub would never accept.
	ErrInvalidRepoID = errors.New("invalid repo id")
	// ErrNoSpace: the disk cannot hold a file about to be downloaded.
	ErrNoSpace = errors.New("not enough disk space")
	// ErrUnreachable: the host could not be reached at all (connection
	// refused, DNS failure, connect timeout), after a short retry budget
	// (Options.ConnectRetries). The error is an *UnreachableError.
	ErrUnreachable = errors.New("host unreachable")
)

// UnreachableError reports a host that could not be reached. It wraps
// ErrUnreachable and the network error.
type UnreachableError struct {
	Host     string // host[:port] that was dialled
	Attempts int    // attempts made, 0 when not known
	Err      error  // the network error (connection refused, no such host, ...)
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("could not reach %s: %v", e.Host, e.Err)
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return msg + "; check the network connection, the proxy settings (HTTPS_PROXY) and the endpoint (HF_ENDPOINT, --endpoint)"
}

// Unwrap returns ErrUnreachable and the network error.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// maxQuoted is the most bytes of one server-provided value (a path, a
// header, a message) that an error message quotes.
const maxQuoted = 256

// maxKeptServerText is the most bytes of a server's header an HTTPError
// keeps in its fields.
const maxKeptServerText = 4096

// clipServer cuts s to at most max bytes (at a character boundary), saying
// how long it was when cut.
func clipServer(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// quoteServer quotes a value that came from the server (or from the user)
// for an error message: Go-quoted, at most maxQuoted bytes of it, and its
// length when it was longer. Every error that quotes such a value goes
// through it, so that a hostile server cannot make an error message huge.
func quoteServer(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// plainServer is s as is when it is short and needs no quoting (a plain
// repository path), else quoteServer(s).
func plainServer(s string) string {
	if len(s) <= maxQuoted {
		if q := strconv.Quote(s); len(q) == len(s)+2 {
			return s
		}
	}
	return quoteServer(s)
}

// HTTPError is the error for a Hub response with a failing status. It wraps
// one of the sentinels above (see Unwrap), carries the server's error code
// and message, and its Error text tells the user what to do next.
type HTTPError struct {
	StatusCode int
	// Code is the X-Error-Code header (RepoNotFound, RevisionNotFound,
	// EntryNotFound, GatedRepo), empty when absent.
	Code string
	// ServerMessage is the X-Error-Message header (at most 4 KiB of it),
	// empty when absent.
	ServerMessage string
	// RepoID, Revision and Path name what was asked for, where known.
	RepoID, Revision, Path string
	// URL is the request URL (never holds credentials: tokens travel in headers).
	URL string
	// RequestID is the X-Request-Id header, for bug reports.
	RequestID string
	// Commit is the X-Repo-Commit header, set on EntryNotFound answers.
	Commit string
	// Host is set when the answer came from a host other than the
	// endpoint (a CDN serving the bytes of an LFS file).
	Host string

	kind error
}

// Unwrap returns the sentinel error for this response.
func (e *HTTPError) Unwrap() error { return e.kind }

func (e *HTTPError) Error() string {
	what := e.RepoID
	if e.Revision != "" {
		what += "@" + e.Revision
	}
	if e.Path != "" {
		if what != "" {
			what += ": "
		}
		what += plainServer(e.Path)
	}
	var msg string
	switch {
	case e.Host != "":
		msg = fmt.Sprintf("%s: download host %s answered %d %s", what, e.Host, e.StatusCode, http.StatusText(e.StatusCode))
		if e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests {
			msg += "; retry later"
		}
	default:
		msg = e.hubMessage(what)
	}
	if e.ServerMessage != "" {
		msg += " (server: " + quoteServer(e.ServerMessage) + ")"
	}
	if e.RequestID != "" {
		msg += " [request id " + plainServer(e.RequestID) + "]"
	}
	return msg
}

func (e *HTTPError) hubMessage(what string) string {
	var msg string
	switch e.kind {
	case ErrGatedRepo:
		msg = fmt.Sprintf("%s is a gated repository: accept its conditions on the repository page on the Hub, "+
			"then pass a token of that account in HF_TOKEN (or --token, or $HF_HOME/token)", what)
	case ErrRepoNotFound:
		msg = fmt.Sprintf("repository %s not found: check the repo id; if it is private, set HF_TOKEN (or --token) "+
			"to a token that can read it", what)
	case ErrRevisionNotFound:
		msg = fmt.Sprintf("revision not found for %s: check the branch, tag or commit name", what)
	case ErrEntryNotFound:
		msg = fmt.Sprintf("file not found: %s does not exist at that revision", what)
	case ErrUnauthorized:
		msg = fmt.Sprintf("unauthorized for %s: the token is missing, invalid or expired; set HF_TOKEN (or --token) "+
			"to a valid token", what)
	case ErrForbidden:
		msg = fmt.Sprintf("forbidden for %s: the token lacks permission for this repository; use a token with read access "+
			"in HF_TOKEN (or --token)", what)
	default:
		msg = fmt.Sprintf("%s: hub answered %d %s", what, e.StatusCode, http.StatusText(e.StatusCode))
		if e.StatusCode == http.StatusTooManyRequests {
			msg += "; rate limited: wait and retry later, or authenticate with HF_TOKEN for a higher limit"
		} else if e.StatusCode >= 500 {
			msg += "; the server failed: retry later"
		}
	}
	return msg
}

// IntegrityError reports downloaded bytes that do not match what the Hub
// announced. It wraps ErrIntegrity.
type IntegrityError struct {
	Path      string // path in the repository
	Algorithm string // "sha256", "git-sha1" or "size"
	Expected  string
	Actual    string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("%s: %s mismatch: expected %s, got %s; the download was discarded, nothing was written to the snapshot",
		plainServer(e.Path), e.Algorithm, plainServer(e.Expected), plainServer(e.Actual))
}

// Unwrap returns ErrIntegrity.
func (e *IntegrityError) Unwrap() error { return ErrIntegrity }

// kindForResponse maps a failing status and X-Error-Code to a sentinel.
func kindForResponse(status int, code, serverMessage string) error {
	switch code {
	case hubproto.ErrorRepoNotFound:
		return ErrRepoNotFound
	case hubproto.ErrorRevisionNotFound:
		return ErrRevisionNotFound
	case hubproto.ErrorEntryNotFound:
		return ErrEntryNotFound
	case hubproto.ErrorGatedRepo:
		return ErrGatedRepo
	}
	switch status {
	case http.StatusUnauthorized:
		// The Hub answers 401 for private and missing repos alike when no
		// valid token is sent; an explicit credentials complaint means the
		// token itself is bad.
		if serverMessage == hubproto.InvalidCredentials {
			return ErrUnauthorized
		}
		return ErrRepoNotFound
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrRepoNotFound
	}
	return ErrServer
}
