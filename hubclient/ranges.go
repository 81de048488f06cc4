package hubclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// byteRange is the half-open interval [Start, End).
type byteRange struct{ Start, End int64 }

// rangeSet is a sorted list of disjoint, non-adjacent byte ranges.
type rangeSet []byteRange

// add merges [start, end) into the set.
func (s rangeSet) add(start, end int64) rangeSet {
	if end <= start {
		return s
	}
	i := sort.Search(len(s), func(i int) bool { return s[i].End >= start })
	j := i
	for j < len(s) && s[j].Start <= end {
		start = min(start, s[j].Start)
		end = max(end, s[j].End)
		j++
	}
	out := make(rangeSet, 0, len(s)-(j-i)+1)
	out = append(out, s[:i]...)
	out = append(out, byteRange{start, end})
	return append(out, s[j:]...)
}

// missing returns the parts of [start, end) not in the set.
func (s rangeSet) missing(start, end int64) []byteRange {
	var out []byteRange
	pos := start
	for _, r := range s {
		if r.End <= pos {
			continue
		}
		if r.Start >= end {
			break
		}
		if r.Start > pos {
			out = append(out, byteRange{pos, r.Start})
		}
		pos = max(pos, r.End)
		if pos >= end {
			return out
		}
	}
	if pos < end {
		out = append(out, byteRange{pos, end})
	}
	return out
}

// prefix is the length of the contiguous range starting at 0.
func (s rangeSet) prefix() int64 {
	if len(s) > 0 && s[0].Start == 0 {
		return s[0].End
	}
	return 0
}

// total is the number of bytes covered.
func (s rangeSet) total() int64 {
	var n int64
	for _, r := range s {
		n += r.End - r.Start
	}
	return n
}

// partialRecord is the file next to an incomplete download that says which
// byte ranges of it hold data already written (and synced).
type partialRecord struct {
	Version int        `json:"version"`
	ETag    string     `json:"etag"`
	Size    int64      `json:"size"`
	Ranges  [][2]int64 `json:"ranges"`
}

const partialRecordVersion = 1

// recordPath is where the range record of an incomplete file lives.
func recordPath(incomplete string) string { return incomplete + ".ranges" }

// loadRecord reads the record of incomplete and returns the ranges it
// vouches for, or nil when there is no usable record (missing, corrupt, for
// another ETag or size, or claiming more than the file holds).
func loadRecord(incomplete, etag string, size int64) rangeSet {
	data, err := os.ReadFile(recordPath(incomplete))
	if err != nil || len(data) > 16<<20 {
		return nil
	}
	var rec partialRecord
	if json.Unmarshal(data, &rec) != nil || rec.Version != partialRecordVersion || rec.ETag != etag || rec.Size != size {
		return nil
	}
	st, err := os.Stat(incomplete)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	var s rangeSet
	for _, r := range rec.Ranges {
		start, end := r[0], min(r[1], st.Size(), size)
		if start < 0 || start >= end {
			continue
		}
		s = s.add(start, end)
	}
	return s
}

// saveRecord writes the record atomically.
func saveRecord(incomplete, etag string, size int64, s rangeSet) error {
	rec := partialRecord{Version: partialRecordVersion, ETag: etag, Size: size, Ranges: make([][2]int64, len(s))}
	for i, r := range s {
		rec.Ranges[i] = [2]int64{r.Start, r.End}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(recordPath(incomplete), data, 0o644)
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
