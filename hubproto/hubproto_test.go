package hubproto

import "testing"

func TestParseRange(t *testing.T) {
	type want struct {
		offset, length  int64
		ok, satisfiable bool
	}
	for in, w := range map[string]want{
		"bytes=0-9":     {0, 10, true, true},
		"bytes=5-":      {5, 95, true, true},
		"bytes=-10":     {90, 10, true, true},
		"bytes=-200":    {0, 100, true, true},
		"bytes=90-200":  {90, 10, true, true},
		"bytes= 3-4":    {3, 2, true, true},
		"bytes=100-":    {0, 0, true, false},
		"bytes=100-200": {0, 0, true, false},
		"bytes=-0":      {0, 0, true, false},
		"bytes=5-4":     {0, 0, false, false},
		"bytes=0-1,3-4": {0, 0, false, false},
		"items=0-1":     {0, 0, false, false},
		"bytes=a-b":     {0, 0, false, false},
		"bytes=-":       {0, 0, false, false},
		"bytes=--1":     {0, 0, false, false},
	} {
		o, n, ok, sat := ParseRange(in, 100)
		if ok != w.ok || sat != w.satisfiable || (sat && (o != w.offset || n != w.length)) {
			t.Errorf("%q: offset %d length %d ok %v satisfiable %v, want %+v", in, o, n, ok, sat, w)
		}
	}
	if _, _, ok, sat := ParseRange("bytes=0-", 0); !ok || sat {
		t.Errorf("a range of an empty file: ok %v satisfiable %v, want unsatisfiable", ok, sat)
	}
}
