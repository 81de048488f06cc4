package forward

import "sync"

// scratchPool keeps the activation buffers of a network's runs between
// runs: a decoder layer at sequence 256 writes tens of MiB of q, k, v and
// MLP activations, and fresh allocations of that size come as untouched
// pages whose first writes fault (a tenth of a Gemma-3-1B layer's time at
// one thread). Runs taken at once get buffers of their own.
type scratchPool struct{ p sync.Pool }

// scratch is one run's set of buffers, handed out in the order a run asks
// for them.
type scratch struct {
	bufs [][]float32
	next int
}

// get returns a scratch set for one run; put gives it back.
func (sp *scratchPool) get() *scratch {
	if s, ok := sp.p.Get().(*scratch); ok {
		s.next = 0
		return s
	}
	return &scratch{}
}

func (sp *scratchPool) put(s *scratch) { sp.p.Put(s) }

// take returns a buffer of length n with unspecified contents (zeros the
// first time): the run must write every element before reading it.
func (s *scratch) take(n int) []float32 {
	if s.next == len(s.bufs) {
		s.bufs = append(s.bufs, nil)
	}
	b := s.bufs[s.next]
	if cap(b) < n {
		b = make([]float32, n)
		s.bufs[s.next] = b
	}
	s.next++
	return b[:n]
}
