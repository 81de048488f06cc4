package hubtest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubmirror/hubmirror/hubproto"
)

// The Hub as it answers for Xet-backed repositories (Hub.Xet):
//
//   - An LFS file's /resolve (HEAD or GET) is a 302 to a signed CDN URL,
//     {cdn}/xet-bridge-us/{sha256}?...&Expires={unix}&Signature={hmac},
//     with X-Linked-Etag (the sha256) and X-Linked-Size, X-Xet-Hash and
//     Link: <{hub}/api/models/{repo}/xet-read-token/{commit}>; rel="xet-auth".
//     A client with Xet support fetches through the Xet protocol; one
//     without follows the redirect. The CDN refuses a URL whose signature
//     is wrong or whose Expires has passed (403, as CloudFront does).
//   - A regular (small) file's /resolve is a 307 with a relative Location,
//     /api/resolve-cache/models/{repo}/{commit}/{path}?...&etag=..., and
//     X-Repo-Commit; that route answers the bytes with ETag and
//     X-Repo-Commit, whatever its query (huggingface_hub drops it).
//
// Requests to the CDN's Xet path are recorded with Kind "blob", to the
// resolve cache with Kind "cache" (both count as Downloads).

// xetSigner signs and checks the CDN URLs of the Xet emulation.
type xetSigner struct {
	key []byte
}

func newXetSigner() *xetSigner {
	k := make([]byte, 32)
	rand.Read(k)
	return &xetSigner{key: k}
}

func (s *xetSigner) sign(sha string, expires int64) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(sha + "|" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *xetSigner) valid(sha, expires, sig string, now time.Time) bool {
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || now.Unix() >= exp {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(s.sign(sha, exp)))
}

// xetHash stands for the Xet hash of a file (a merkle hash of its chunks
// on the real Hub): 64 hex digits that are not its sha256.
func xetHash(f *File) string {
	sum := sha256.Sum256([]byte("xet:" + f.SHA256))
	return hex.EncodeToString(sum[:])
}

// Now is the hub's clock (the expiry of signed URLs); AdvanceClock moves it.
func (h *Hub) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().Add(h.clockSkew)
}

// AdvanceClock moves the hub's clock forward by d, so that signed CDN URLs
// handed out before expire (see XetURLTTL).
func (h *Hub) AdvanceClock(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clockSkew += d
}

// XetBlobURL is the signed CDN URL the Xet emulation hands out for an LFS
// file now.
func (h *Hub) XetBlobURL(f *File) string {
	ttl := h.XetURLTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	exp := h.now().Add(ttl).Unix()
	q := url.Values{}
	q.Set("X-Xet-Cas-Uid", "public")
	q.Set("file", f.Path)
	q.Set("Expires", strconv.FormatInt(exp, 10))
	q.Set("Signature", h.signer.sign(f.SHA256, exp))
	return h.cdn.URL + "/xet-bridge-us/" + f.SHA256 + "?" + q.Encode()
}

// serveXetResolve answers /resolve for a repo on Xet storage.
func (h *Hub) serveXetResolve(w http.ResponseWriter, req *http.Request, rec *Request, repo, rev, commit string, f *File) {
	hdr := w.Header()
	hdr.Set(hubproto.HeaderRepoCommit, commit)
	if f.LFS {
		size := strconv.FormatInt(f.Content.Size(), 10)
		hdr.Set(hubproto.HeaderLinkedETag, `"`+f.SHA256+`"`)
		hdr.Set(hubproto.HeaderLinkedSize, size)
		hdr.Set("ETag", `"`+f.GitSHA1+`"`)
		hdr.Set(hubproto.HeaderXetHash, xetHash(f))
		hdr.Set("Link", "<"+h.hub.URL+"/api/models/"+repo+"/xet-read-token/"+commit+`>; rel="`+hubproto.LinkRelXetAuth+`"`)
		hdr.Set("Location", h.XetBlobURL(f))
		rec.Status = http.StatusFound
		h.record(rec)
		w.WriteHeader(http.StatusFound)
		return
	}
	q := url.Values{}
	q.Set("/"+repo+"/resolve/"+rev+"/"+f.Path, "")
	q.Set("etag", `"`+f.GitSHA1+`"`)
	hdr.Set("Location", "/api/resolve-cache/models/"+repo+"/"+commit+"/"+escapePath(f.Path)+"?"+q.Encode())
	rec.Status = http.StatusTemporaryRedirect
	h.record(rec)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// serveResolveCache answers /api/resolve-cache/models/{repo}/{commit}/{path}
// and reports whether the path was one.
func (h *Hub) serveResolveCache(w http.ResponseWriter, req *http.Request, segs []string) bool {
	if len(segs) < 6 || segs[0] != "api" || segs[1] != "resolve-cache" || segs[2] != "models" {
		return false
	}
	rest := segs[3:]
	rec := &Request{Host: "hub", Kind: "cache", Method: req.Method, Range: req.Header.Get("Range"), Auth: req.Header.Get("Authorization") != ""}
	h.mu.Lock()
	var repo *Repo
	var commit string
	for _, n := range []int{2, 1} {
		if len(rest) > n+1 && isCommit(rest[n]) {
			if r := h.repos[strings.Join(rest[:n], "/")]; r != nil {
				repo, commit, rec.Path = r, rest[n], strings.Join(rest[n+1:], "/")
				break
			}
		}
	}
	if repo == nil {
		h.mu.Unlock()
		rec.Status = http.StatusNotFound
		h.record(rec)
		writeError(w, http.StatusNotFound, hubproto.ErrorRepoNotFound, "Repository not found")
		return true
	}
	rec.Repo = repo.ID
	if status, code, msg := h.accessLocked(repo, req); status != 0 {
		h.mu.Unlock()
		rec.Status = status
		h.record(rec)
		writeError(w, status, code, msg)
		return true
	}
	f := repo.commits[commit][rec.Path]
	fault := h.takeFaultLocked(ScopeDownload, rec.Path, ServiceUnavailable, TooManyRequests)
	h.mu.Unlock()
	if fault != nil {
		rec.Fault, rec.Status = fault.Kind.String(), fault.status()
		h.record(rec)
		writeError(w, rec.Status, "", rec.Fault)
		return true
	}
	w.Header().Set(hubproto.HeaderRepoCommit, commit)
	if f == nil || f.LFS {
		rec.Status = http.StatusNotFound
		h.record(rec)
		writeError(w, http.StatusNotFound, hubproto.ErrorEntryNotFound, rec.Path+" is not in the resolve cache")
		return true
	}
	w.Header().Set("ETag", `"`+f.GitSHA1+`"`)
	h.serveBytes(w, req, rec, f)
	return true
}

func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// refuseXetURL answers 403 to a request for the CDN's Xet path
// (/xet-bridge-us/{sha256}) whose signature is wrong or expired, and
// reports whether it did.
func (h *Hub) refuseXetURL(w http.ResponseWriter, req *http.Request, rec *Request, sha string) bool {
	q := req.URL.Query()
	if h.signer.valid(sha, q.Get("Expires"), q.Get("Signature"), h.now()) {
		return false
	}
	rec.Status = http.StatusForbidden
	rec.Fault = "expired-url"
	h.record(rec)
	writeError(w, http.StatusForbidden, "", "AccessDenied: Request has expired or its signature does not match")
	return true
}
