// Package hubclient downloads model repositories from the Hugging Face Hub
// (or any server speaking its protocol, such as hubmirror serve): fast
// (parallel files, parallel byte ranges within large files), resumable
// across runs, verified (sha256 for LFS files, git blob sha1 for files in
// git, size always) and laid out exactly where huggingface_hub and the
// Python tools built on it look for them. The package never prints;
// progress goes through the Progress interface.
//
// # Client
//
// New returns a Client for Options (endpoint, token, HTTP client or
// transport, retries, timeouts). Its protocol calls:
//
//   - RepoInfo: GET {endpoint}/api/models/{id}/revision/{rev}?blobs=true, the
//     commit sha and the files with sizes and LFS hashes.
//   - ListTree: GET {endpoint}/api/models/{id}/tree/{rev}?recursive=true,
//     following Link: <...>; rel="next" pages.
//
// A dataset or space is named by its qualified id, "datasets/org/name" or
// "spaces/org/name" (hubproto.SplitRepo), everywhere a repo id is taken:
// its API calls go to /api/datasets/{id}/..., its files to
// {endpoint}/datasets/{id}/resolve/..., and its cache folder is
// datasets--org--name, as huggingface_hub names them.
//   - Resolve: HEAD {endpoint}/{id}/resolve/{rev}/{path}: X-Repo-Commit
//     (required), X-Linked-Etag or ETag (normalised: no W/, no quotes),
//     X-Linked-Size or Content-Length, and the download location. Redirects
//     on the endpoint host (renamed repositories) are followed with the
//     token; a redirect to another host (the CDN of LFS files) is returned
//     as the location and fetched without it.
//   - OpenFile: one file as a stream, resumed with Range requests when the
//     connection breaks, hashed on the way and verified at EOF (the Read
//     that reaches the end returns an *IntegrityError instead of io.EOF on a
//     mismatch). For consumers that store elsewhere (pull --to s3://...).
//   - Files: the commit of a revision and its (filtered, validated) files.
//   - Download: a whole revision into the cache or a local directory;
//     DownloadFile: one file, recording missing ones under .no_exist/.
//
// The token goes in an Authorization header to the endpoint host only,
// never to another host, and never appears in an error. Requests are
// retried on network errors, 408, 429 and 5xx, with exponential backoff and
// jitter (github.com/cenkalti/backoff/v5), honouring Retry-After; a
// download's retry budget refills whenever an attempt delivered bytes.
// A host that cannot be reached at all (connection refused, DNS failure,
// connect timeout) has its own short budget (ConnectRetries, under a second
// by default) and ends in an *UnreachableError naming the host.
// ReadTimeout bounds the wait for headers and between body reads; a body
// slower than SpeedLimit over SpeedTime (curl's --speed-limit and
// --speed-time) fails its attempt; APITimeout bounds each attempt of a
// metadata call. Listings and repo info are decoded as they arrive, entry
// by entry, with bounds on each entry (64 KiB, paths of MaxPathBytes) and
// on the whole; errors quote at most a few hundred bytes of any value the
// server sent.
//
// Failures are typed: test with errors.Is against ErrRepoNotFound,
// ErrRevisionNotFound, ErrEntryNotFound, ErrGatedRepo, ErrUnauthorized,
// ErrForbidden, ErrServer, ErrUnreachable, ErrIntegrity, ErrUnsafePath,
// ErrNotCached, ErrInvalidRepoID, ErrNoSpace, or errors.As with *HTTPError,
// *UnreachableError and *IntegrityError. The
// messages say what to do (a gated repository names HF_TOKEN).
//
// # Downloads
//
// Download(ctx, repo, revision, DownloadOptions) resolves the revision to a
// commit (RepoInfo; skipped when the revision is a commit hash), lists its
// files (ListTree, or the listing cached under trees/), applies the
// Include/Exclude filters (huggingface_hub's allow_patterns/ignore_patterns:
// fnmatch, see Filter), refuses unsafe server paths (ValidateRepoPath), and
// fetches what is missing: Workers files at once, and files larger than
// ChunkSize as parallel byte ranges over Connections connections. A server
// that answers a Range request with 200 is handled (the whole body is used).
//
// Partial data lives in blobs/<etag>.incomplete with a record of the byte
// ranges already written (<etag>.incomplete.ranges, rewritten every 2
// seconds or 8 MiB, whichever comes first, and when the download stops); a
// later run requests only what is missing. The disk space of a file is
// reserved before it downloads (where the platform can), and what is
// reserved but not written is given back when the download fails. The content is hashed in order as the written prefix grows; a
// blob is renamed to blobs/<etag> only once its hash matches, and only then
// linked into snapshots/. A file whose bytes do not match is discarded and
// downloaded again once (IntegrityRetries); if it fails again, the error
// names the file and both hashes. Files already complete are not fetched
// again, whoever wrote them (huggingface_hub included): a second pull of
// the same revision downloads nothing, and with a commit hash sends no
// request at all. Offline (HF_HUB_OFFLINE) resolves from the cache alone.
// When the Hub cannot be reached (network errors, 5xx after every retry), a
// complete cached snapshot is returned with FromCache set, as
// huggingface_hub does. Like huggingface_hub, files are not fsynced unless
// DownloadOptions.Fsync is set (a pull is then bounded by the disk's
// sustained write speed).
//
// # Cache layout
//
// The layout is huggingface_hub's, file for file (see cache.go and
// testdata/hf_layout.txt): <cache>/models--{org}--{name}/blobs/<etag>,
// snapshots/<commit>/<path> as relative symlinks ("../../blobs/<etag>",
// one more "../" per directory level), refs/<revision> holding the commit
// without a newline, .no_exist/<commit>/<path> markers, trees/<commit>.json,
// CACHEDIR.TAG at the root, and .locks/ with the same flock huggingface_hub
// takes, so the two never write the same blob at once. With LocalDir the
// files are plain files in that directory, with huggingface_hub's metadata
// under .cache/huggingface/ (download/<path>.metadata: commit, etag, time).
//
// FindSnapshot and CachedFile read a cache without any network access
// (for commands that take org/name[@rev] and for push). CacheDirFromEnv,
// EndpointFromEnv, TokenFromEnv and OfflineFromEnv read the Hugging Face
// environment variables the way huggingface_hub does.
//
// The hubtest subpackage runs a test hub with a CDN, gated and private
// repositories, paginated trees, fault injection and request counters.
package hubclient
