package hubclient

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bigListing is a tree listing of n files of which each entry also carries
// filler bytes of fields the client does not use (as the Hub's expanded
// entries do), so that most of its bytes are not kept.
func bigListing(n, filler int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	pad := strings.Repeat("x", filler)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"type":"directory","oid":"%040x","size":0,"path":"dir%d"},`, i, i)
		fmt.Fprintf(&b, `{"type":"file","oid":"%040x","size":%d,"path":"dir%d/model-%05d.safetensors",`+
			`"lfs":{"oid":"%064x","size":%d,"pointerSize":134},"lastCommit":{"id":"%040x","title":%q,"date":"2024-01-01T00:00:00.000Z"}}`,
			i, 134, i, i, i, 1000+i, i, pad)
	}
	b.WriteString("]")
	return b.Bytes()
}

// peakReader reads r in small pieces and samples the live heap (after a
// collection) every sample bytes.
type peakReader struct {
	r           io.Reader
	sample, got int64
	base, peak  uint64
}

func (p *peakReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b[:min(len(b), 32<<10)])
	if p.got += int64(n); p.got >= p.sample || err != nil {
		p.got = 0
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > p.base {
			p.peak = max(p.peak, ms.HeapAlloc-p.base)
		}
	}
	return n, err
}

// TestTreeListingStreams: a listing is decoded as it arrives, entry by
// entry: the memory it takes while decoding is what it keeps (the files),
// not the listing's size (reading the whole body first would hold all of
// it).
func TestTreeListingStreams(t *testing.T) {
	const n = 3000
	listing := bigListing(n, 2000)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pr := &peakReader{r: bytes.NewReader(listing), sample: 256 << 10, base: ms.HeapAlloc}
	var files []RepoFile
	var lim treeLimits
	if err := decodeTree(pr, &lim, func(f RepoFile) { files = append(files, f) }); err != nil {
		t.Fatal(err)
	}
	if len(files) != n || files[n-1].Path != fmt.Sprintf("dir%d/model-%05d.safetensors", n-1, n-1) ||
		files[n-1].Size != 1000+n-1 || files[n-1].LFS == nil || lim.entries != 2*n {
		t.Fatalf("decoded %d files (%d entries), last %+v", len(files), lim.entries, files[len(files)-1])
	}
	if limit := uint64(len(listing) / 4); pr.peak > limit {
		t.Errorf("decoding a listing of %d bytes took up to %d bytes of heap, want at most %d", len(listing), pr.peak, limit)
	}
	t.Logf("listing %d bytes, peak heap while decoding %d bytes", len(listing), pr.peak)
}

// TestRepoInfoStreams: repo info (with blobs, as large as a listing) is
// decoded as it arrives too, its siblings one by one.
func TestRepoInfoStreams(t *testing.T) {
	const n = 3000
	var b bytes.Buffer
	pad := strings.Repeat("x", 2000)
	fmt.Fprintf(&b, `{"_id":"x","id":"org/m","cardData":{"license":"mit","extra":%q},"private":true,"gated":"manual","siblings":[`, pad)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"rfilename":"model-%05d.safetensors","size":%d,"blobId":"%040x","lfs":{"sha256":"%064x","size":%d,"pointerSize":134},"x":%q}`,
			i, 134, i, i, 1000+i, pad)
	}
	fmt.Fprintf(&b, `],"sha":"%040x","spaces":[]}`, 7)
	info := b.Bytes()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pr := &peakReader{r: bytes.NewReader(info), sample: 256 << 10, base: ms.HeapAlloc}
	got, err := decodeRepoInfo(pr)
	if err != nil {
		t.Fatal(err)
	}
	last := got.Files[len(got.Files)-1]
	if got.ID != "org/m" || got.SHA != fmt.Sprintf("%040x", 7) || !got.Private || got.Gated != "manual" || len(got.Files) != n ||
		last.Path != fmt.Sprintf("model-%05d.safetensors", n-1) || last.Size != 1000+n-1 || last.LFS == nil {
		t.Fatalf("decoded %+v with %d files, last %+v", *got, len(got.Files), last)
	}
	if limit := uint64(len(info) / 4); pr.peak > limit {
		t.Errorf("decoding repo info of %d bytes took up to %d bytes of heap, want at most %d", len(info), pr.peak, limit)
	}
}

// TestTreeListingLimits: what a listing may hold is bounded per entry
// and in all, and a malformed listing is refused.
func TestTreeListingLimits(t *testing.T) {
	entry := `{"type":"file","oid":"0123456789abcdef0123456789abcdef01234567","size":1,"path":"a"}`
	for _, tc := range []struct {
		name, body string
		lim        treeLimits
		want       string
	}{
		{"not an array", `{"error":"x"}`, treeLimits{}, "not a JSON array"},
		{"trailing data", "[" + entry + "] []", treeLimits{}, "data after the listing"},
		{"too many entries", "[" + entry + "]", treeLimits{entries: maxTreeEntries}, "more than"},
		{"too many files", "[" + entry + "]", treeLimits{files: maxTreeFiles}, "more than"},
		{"too many path bytes", "[" + entry + "]", treeLimits{pathBytes: maxTreePathBytes}, "paths take more than"},
		{"huge unknown field", `[{"type":"file","x":"` + strings.Repeat("y", 2*maxTreeEntryBytes) + `"}]`, treeLimits{}, "larger than"},
	} {
		lim := tc.lim
		err := decodeTree(strings.NewReader(tc.body), &lim, func(RepoFile) {})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestConnectRetryBudget: by default a host that cannot be reached is
// retried twice, waiting well under 2 s in all.
func TestConnectRetryBudget(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := c.newRetryPolicy()
	p.lastUnreachable = true
	var total time.Duration
	retries := 0
	for d := p.NextBackOff(); d >= 0; d = p.NextBackOff() {
		total += d
		retries++
	}
	if retries != 2 || total >= 2*time.Second {
		t.Errorf("%d retries waiting %s in all, want 2 retries well under 2s", retries, total)
	}
}

func BenchmarkDecodeTree(b *testing.B) {
	listing := bigListing(5000, 200)
	b.SetBytes(int64(len(listing)))
	b.ReportAllocs()
	for b.Loop() {
		var lim treeLimits
		n := 0
		if err := decodeTree(bytes.NewReader(listing), &lim, func(RepoFile) { n++ }); err != nil || n != 5000 {
			b.Fatal(n, err)
		}
	}
}
