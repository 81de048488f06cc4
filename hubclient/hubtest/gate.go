package hubtest

import (
	"context"
	"net/http"
	"sync"
)

// Gate holds the bytes of a file from offset After on in every download of
// it (hub or CDN, whole or ranged) until Open is called: the bytes before
// After are sent and flushed, then the answer waits. A test uses it to see
// what a client downstream receives while an upstream download is under
// way, without timing anything.
type Gate struct {
	After int64

	once sync.Once
	open chan struct{}
	// reached is closed when a download first waits at the gate.
	reachedOnce sync.Once
	reached     chan struct{}
}

// Hold arms a gate on the file at path (its path in the repository) at
// byte offset after, replacing any gate on it. The gate stays until the
// test ends or Open is called.
func (h *Hub) Hold(path string, after int64) *Gate {
	g := &Gate{After: after, open: make(chan struct{}), reached: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gates == nil {
		h.gates = map[string]*Gate{}
	}
	h.gates[path] = g
	return g
}

// Open lets every download waiting at the gate, and every later one, go on.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

// Reached is closed once a download has sent the bytes before After and
// waits at the gate.
func (g *Gate) Reached() <-chan struct{} { return g.reached }

// gateLocked returns the gate on path, or nil.
func (h *Hub) gateLocked(path string) *Gate {
	return h.gates[path]
}

// wait flushes w and waits until the gate opens or ctx ends; it reports
// whether the gate opened.
func (g *Gate) wait(ctx context.Context, w http.ResponseWriter) bool {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	g.reachedOnce.Do(func() { close(g.reached) })
	select {
	case <-g.open:
		return true
	case <-ctx.Done():
		return false
	}
}
