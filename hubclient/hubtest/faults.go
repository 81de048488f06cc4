package hubtest

import (
	"context"
	"net/http"
	"time"
)

// FaultKind is a kind of injected failure.
type FaultKind int

const (
	// DropConnection sends After bytes of the body, then cuts the connection.
	DropConnection FaultKind = iota + 1
	// TooManyRequests answers 429 with Retry-After: RetryAfter seconds.
	TooManyRequests
	// ServiceUnavailable answers 503.
	ServiceUnavailable
	// WrongBytes serves the body with the byte at file offset After
	// flipped (the first byte served when After is outside the range).
	WrongBytes
	// IgnoreRange answers a Range request with 200 and the whole file.
	IgnoreRange
	// ExpiredURL makes the CDN refuse a signed URL with 403, as when its
	// signature has expired.
	ExpiredURL
	// Trickle sends the body of the answer at Rate bytes per second,
	// flushing every few bytes so that the client sees them arrive
	// slowly. It hits GETs: downloads, or API answers (tree listings,
	// repo info) with ScopeAPI.
	Trickle
)

func (k FaultKind) String() string {
	switch k {
	case DropConnection:
		return "drop-connection"
	case TooManyRequests:
		return "429"
	case ServiceUnavailable:
		return "503"
	case WrongBytes:
		return "wrong-bytes"
	case IgnoreRange:
		return "ignore-range"
	case ExpiredURL:
		return "expired-url"
	case Trickle:
		return "trickle"
	}
	return "unknown"
}

// Scope says which requests a fault may hit.
type Scope int

const (
	// ScopeDownload: GETs of file bytes, on the hub (/resolve) or the CDN.
	ScopeDownload Scope = iota
	// ScopeAPI: the JSON API (repo info, tree).
	ScopeAPI
	// ScopeResolve: HEAD /resolve.
	ScopeResolve
	// ScopeAny: every request.
	ScopeAny
)

// Fault is a failure to inject into the next matching answers.
type Fault struct {
	Kind FaultKind
	// Path limits the fault to one file of a repository ("" for any).
	Path string
	// Scope limits the fault to a kind of request (default ScopeDownload;
	// DropConnection, WrongBytes and IgnoreRange only hit downloads).
	Scope Scope
	// Times is how many answers the fault hits (0 means 1; negative: every
	// matching answer from now on).
	Times int
	// After is the byte count (DropConnection) or file offset (WrongBytes).
	After int64
	// RetryAfter is the Retry-After of TooManyRequests, in seconds.
	RetryAfter int
	// Rate is the speed of Trickle, in bytes per second (default 1).
	Rate int64
}

type faultState struct {
	Fault
	left int // answers left; negative: unlimited
}

func (f *faultState) status() int {
	switch f.Kind {
	case TooManyRequests:
		return http.StatusTooManyRequests
	case ExpiredURL:
		return http.StatusForbidden
	}
	return http.StatusServiceUnavailable
}

// Inject arms a fault. Faults are consumed in the order they were added.
func (h *Hub) Inject(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	left := f.Times
	if left == 0 {
		left = 1
	}
	h.faults = append(h.faults, &faultState{Fault: f, left: left})
}

// ClearFaults disarms every fault.
func (h *Hub) ClearFaults() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = nil
}

// takeFaultLocked consumes the first armed fault of one of kinds that
// matches the scope and path.
func (h *Hub) takeFaultLocked(scope Scope, path string, kinds ...FaultKind) *faultState {
	for i, f := range h.faults {
		if f.left == 0 {
			continue
		}
		kindOK := false
		for _, k := range kinds {
			kindOK = kindOK || f.Kind == k
		}
		if !kindOK || (f.Path != "" && f.Path != path) || (f.Scope != ScopeAny && f.Scope != scope) {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		if f.left == 0 {
			h.faults = append(h.faults[:i:i], h.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// trickleLocked returns w, slowed down by the first armed Trickle fault
// that matches a GET of scope and path.
func (h *Hub) trickleLocked(w http.ResponseWriter, req *http.Request, scope Scope, path string) http.ResponseWriter {
	if req.Method != http.MethodGet {
		return w
	}
	f := h.takeFaultLocked(scope, path, Trickle)
	if f == nil {
		return w
	}
	return &trickleWriter{ResponseWriter: w, ctx: req.Context(), rate: max(f.Rate, 1)}
}

// trickleWriter writes at rate bytes per second, in pieces of a twentieth
// of a second's worth, each flushed to the connection.
type trickleWriter struct {
	http.ResponseWriter
	ctx  context.Context
	rate int64
}

func (t *trickleWriter) Write(p []byte) (int, error) {
	piece := int(max(t.rate/20, 1))
	wait := time.Duration(float64(piece) / float64(t.rate) * float64(time.Second))
	var n int
	for n < len(p) {
		k, err := t.ResponseWriter.Write(p[n:min(n+piece, len(p))])
		n += k
		if err != nil {
			return n, err
		}
		if fl, ok := t.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-time.After(wait):
		case <-t.ctx.Done():
			return n, t.ctx.Err()
		}
	}
	return n, nil
}

// Flush flushes the underlying writer.
func (t *trickleWriter) Flush() {
	if fl, ok := t.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
