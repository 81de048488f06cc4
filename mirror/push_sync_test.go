package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

// TestPushLocalSyncs: a push into a local store fsyncs each blob, the
// manifest and the ref, and no lease (see lease.go), and syncs the blobs'
// directory once, not once per blob; what it wrote is complete.
func TestPushLocalSyncs(t *testing.T) {
	ctx := context.Background()
	l, err := storage.NewLocal(filepath.Join(t.TempDir(), "mirror"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 20
	var files []PushFile
	for i := range n {
		data := fmt.Appendf(nil, "file %d\n", i)
		files = append(files, PushFile{Path: fmt.Sprintf("data/%02d.txt", i), Size: int64(len(data)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
	}
	res, err := Push(ctx, l, "org/many", files, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != n {
		t.Fatalf("uploaded %d blobs, want %d", res.Uploaded, n)
	}
	fileSyncs, dirSyncs := l.Syncs()
	// n blobs, the manifest, the ref.
	if fileSyncs != n+2 {
		t.Errorf("%d file fsyncs, want %d (one per blob, the manifest, the ref)", fileSyncs, n+2)
	}
	// The blobs' directory, the manifest's, the ref's.
	if dirSyncs != 3 {
		t.Errorf("%d directory fsyncs, want 3", dirSyncs)
	}
	// Pushed again, every blob is found present: it may be another
	// push's, its directory sync still pending, so the blobs' directory is
	// synced before the manifest is relied on (none is written here, and
	// no blob is fsynced).
	before, beforeDirs := l.Syncs()
	if _, err := Push(ctx, l, "org/many", files, PushOptions{Revision: "again"}); err != nil {
		t.Fatal(err)
	}
	fileSyncs, dirSyncs = l.Syncs()
	if fileSyncs-before != 1 || dirSyncs-beforeDirs != 2 {
		t.Errorf("a push of present blobs made %d file and %d directory fsyncs, want 1 (the new ref) and 2 (the blobs', the ref's)",
			fileSyncs-before, dirSyncs-beforeDirs)
	}
	m, err := Resolve(ctx, l, "org/many", "main")
	if err != nil || len(m.Files) != n {
		t.Fatalf("the pushed revision: %v, %v", m, err)
	}
	for _, e := range m.Files {
		if _, err := VerifyBlob(ctx, l, e); err != nil {
			t.Errorf("%s: %v", e.Path, err)
		}
	}
}
