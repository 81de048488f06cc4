package hubclient

import "sync/atomic"

// connPool is a pool of connections (goroutines) fetching the ranges of
// one file, which the ramp-up grows and shrinks: workers leave between
// ranges while the pool is larger than wanted.
type connPool struct {
	want, active atomic.Int32
}

// resize sets the wanted size to n, and starts workers (with start) until
// n are active; a smaller n lets the extra workers leave (leave).
func (p *connPool) resize(n int, start func()) {
	p.want.Store(int32(n))
	for p.active.Load() < int32(n) {
		p.active.Add(1)
		start()
	}
}

// leave reports whether a worker between ranges should leave the pool
// (which then counts one fewer).
func (p *connPool) leave() bool {
	for {
		n := p.active.Load()
		if n <= p.want.Load() {
			return false
		}
		if p.active.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// done counts a worker that returned for another reason (no more ranges,
// an error).
func (p *connPool) done() { p.active.Add(-1) }

// rampUp runs the ramp-up of a pool that starts with one connection:
// measure it over a window, then two; then all of them when two were at
// least 1.5 times faster than one (a per-connection limit, as on most CDNs
// and long links), or back to one when the second gained less than 15% (a
// link, CPU or disk that one connection already saturates). measure
// returns the rate over one window, and false when the ramp should stop
// where it is (the download ended, the ranges ran out, or something other
// than connections limits it); resize sets the pool's size.
func rampUp(all int, measure func() (float64, bool), resize func(int)) {
	one, ok := measure()
	if !ok {
		return
	}
	resize(2)
	two, ok := measure()
	if !ok {
		return
	}
	switch {
	case two >= 1.5*one:
		resize(all)
	case two < 1.15*one:
		resize(1)
	}
}
