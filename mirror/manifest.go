package mirror

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/storage"
)

// ManifestVersion is the version of the manifest format this package writes
// and reads.
const ManifestVersion = 1

// Limits that a manifest read from storage must respect.
const (
	MaxManifestSize  = 64 << 20
	MaxManifestFiles = 1 << 20
	MaxFileSize      = 1 << 50
)

// Manifest lists the files of one commit of a repo. It is written after all
// its blobs and never changes afterwards.
type Manifest struct {
	Version int       `json:"version"`
	Repo    string    `json:"repo"`
	Commit  string    `json:"commit"`
	Created time.Time `json:"created"`
	Source  Source    `json:"source"`
	// Variant is set for converted or quantized models derived from
	// another commit of the same repo.
	Variant *Variant `json:"variant,omitempty"`
	// Files, sorted by Path.
	Files []Entry `json:"files"`
}

// Source records where a commit came from.
type Source struct {
	// Kind is "dir" (a local directory), "hub" (pulled from a Hub),
	// "cache" (a Hugging Face cache snapshot) or "variant".
	Kind string `json:"kind"`
	// Location is the directory, endpoint or URL it was read from.
	Location string `json:"location,omitempty"`
	// Revision is the revision name it was pushed as.
	Revision string `json:"revision,omitempty"`
	// Include and Exclude are the file filters of a pull that mirrored
	// only some files of a Hub commit (hubclient.Filter semantics).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Variant describes a commit derived from another one.
type Variant struct {
	// Name is the revision name clients use ("int8").
	Name string `json:"name"`
	// SourceCommit is the commit of the same repo it was derived from.
	SourceCommit string `json:"source_commit"`
	// Report is the path, among Files, of its validation report.
	Report string `json:"report"`
}

// Entry is one file of a manifest.
type Entry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// GitOID is the blob id the Hub reports for the file: the git blob
	// SHA-1 of the content for a regular file, of the LFS pointer for an LFS
	// file.
	GitOID string `json:"git_oid"`
	LFS    bool   `json:"lfs"`
}

// ETag returns the entity tag the Hub gives the file: its sha256 for an LFS
// file, its git blob id otherwise (unquoted).
func (e Entry) ETag() string {
	if e.LFS {
		return e.SHA256
	}
	return e.GitOID
}

// PointerSize returns the size of the file's LFS pointer.
func (e Entry) PointerSize() int { return len(LFSPointer(e.SHA256, e.Size)) }

// File returns the entry for path, or false.
func (m *Manifest) File(p string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, p, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return m.Files[i], true
}

// TotalSize returns the sum of the file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// LFSPointer returns the git-lfs pointer file of content with the given
// sha256 and size.
func LFSPointer(sha256 string, size int64) []byte {
	return []byte("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256 + "\nsize " + strconv.FormatInt(size, 10) + "\n")
}

// GitBlobHeader returns the header git hashes before a blob of size bytes.
func GitBlobHeader(size int64) []byte {
	return []byte("blob " + strconv.FormatInt(size, 10) + "\x00")
}

// GitBlobOID returns the git blob id of data.
func GitBlobOID(data []byte) string {
	h := sha1.New()
	h.Write(GitBlobHeader(int64(len(data))))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// LFSOID returns the git blob id of the LFS pointer of content with the given
// sha256 and size: the blob id the Hub reports for an LFS file.
func LFSOID(sha256 string, size int64) string { return GitBlobOID(LFSPointer(sha256, size)) }

// CommitID returns the commit id of content: a SHA-1 over the sorted files'
// paths, sizes, sha256s and LFS flags and, for a variant, its name and
// source commit. The same content always gets the same id, so pushing a
// directory twice names the same commit; it is 40 hex digits like a git
// commit (it is not one: the mirror keeps no history).
func CommitID(files []Entry, v *Variant) string {
	h := sha1.New()
	h.Write([]byte("hubmirror commit v1\n"))
	if v != nil {
		fmt.Fprintf(h, "variant %s %s %s\n", v.Name, v.SourceCommit, v.Report)
	}
	sorted := slices.Clone(files)
	sortEntries(sorted)
	for _, f := range sorted {
		lfs := 0
		if f.LFS {
			lfs = 1
		}
		fmt.Fprintf(h, "%s %d %d %s\n", f.SHA256, f.Size, lfs, f.Path)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortEntries(files []Entry) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// Encode returns the manifest as indented JSON.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// ParseManifest decodes and validates a manifest read from storage. repo and
// commit are what its key says it is; a manifest that disagrees is refused.
func ParseManifest(data []byte, repo, commit string) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("mirror: manifest %s@%s is %d bytes, over the %d limit: %w", repo, commit, len(data), MaxManifestSize, ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("mirror: manifest %s@%s: %v: %w", repo, commit, err, ErrCorrupt)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("mirror: manifest %s@%s: %v: %w", repo, commit, err, ErrCorrupt)
	}
	if m.Repo != repo || m.Commit != commit {
		return nil, fmt.Errorf("mirror: manifest stored as %s@%s says %s@%s: %w", repo, commit, m.Repo, m.Commit, ErrCorrupt)
	}
	return &m, nil
}

// Validate checks the manifest's invariants: known version, valid repo id
// and commit, files sorted by unique valid paths with no path both a file
// and a directory, sizes in range, well-formed digests, LFS blob ids that
// match their pointer, and for a variant a valid name, source commit and a
// report that is one of the files.
func (m *Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("version %d, want %d", m.Version, ManifestVersion)
	}
	if err := ValidateRepoID(m.Repo); err != nil {
		return err
	}
	if !IsCommitID(m.Commit) {
		return fmt.Errorf("commit %q is not 40 hex digits", m.Commit)
	}
	if len(m.Files) > MaxManifestFiles {
		return fmt.Errorf("%d files, over the %d limit", len(m.Files), MaxManifestFiles)
	}
	if !utf8.ValidString(m.Source.Kind + m.Source.Location + m.Source.Revision + strings.Join(m.Source.Include, "") + strings.Join(m.Source.Exclude, "")) {
		return fmt.Errorf("source is not valid UTF-8")
	}
	dirs := map[string]bool{}
	for i, f := range m.Files {
		if err := ValidatePath(f.Path); err != nil {
			return err
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			return fmt.Errorf("files not sorted or not unique at %q", f.Path)
		}
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("%s: size %d out of range", f.Path, f.Size)
		}
		if storage.ValidateSHA256(f.SHA256) != nil {
			return fmt.Errorf("%s: sha256 %q is not 64 hex digits", f.Path, f.SHA256)
		}
		if !isHex(f.GitOID, 40) {
			return fmt.Errorf("%s: git oid %q is not 40 hex digits", f.Path, f.GitOID)
		}
		if f.LFS && f.GitOID != LFSOID(f.SHA256, f.Size) {
			return fmt.Errorf("%s: git oid %s is not that of its LFS pointer", f.Path, f.GitOID)
		}
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, f := range m.Files {
		if dirs[f.Path] {
			return fmt.Errorf("%q is both a file and a directory", f.Path)
		}
	}
	if v := m.Variant; v != nil {
		if err := ValidateRevision(v.Name); err != nil {
			return err
		}
		if !IsCommitID(v.SourceCommit) {
			return fmt.Errorf("variant source commit %q is not 40 hex digits", v.SourceCommit)
		}
		if _, ok := m.File(v.Report); !ok {
			return fmt.Errorf("variant report %q is not a file of the manifest", v.Report)
		}
	}
	return nil
}

// treeOIDs returns the git tree id of every directory of the manifest ("" is
// the root), computed as git computes them (mode 100644 for files, 40000 for
// directories, entries in git's order), so the tree API can report real oids.
func (m *Manifest) treeOIDs() map[string]string {
	type child struct {
		name string
		dir  bool
		oid  []byte
	}
	children := map[string][]child{"": nil}
	var dirs []string
	for _, f := range m.Files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			if _, ok := children[d]; ok {
				break
			}
			children[d] = nil
			dirs = append(dirs, d)
		}
	}
	parent := func(p string) string {
		if d := path.Dir(p); d != "." {
			return d
		}
		return ""
	}
	for _, f := range m.Files {
		oid, _ := hex.DecodeString(f.GitOID)
		children[parent(f.Path)] = append(children[parent(f.Path)], child{name: path.Base(f.Path), oid: oid})
	}
	// Deepest directories first, so each tree is complete before its parent
	// needs its oid.
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	out := map[string]string{}
	hashTree := func(d string) []byte {
		cs := children[d]
		sort.Slice(cs, func(i, j int) bool {
			a, b := cs[i].name, cs[j].name
			if cs[i].dir {
				a += "/"
			}
			if cs[j].dir {
				b += "/"
			}
			return a < b
		})
		var body bytes.Buffer
		for _, c := range cs {
			mode := "100644"
			if c.dir {
				mode = "40000"
			}
			body.WriteString(mode + " " + c.name + "\x00")
			body.Write(c.oid)
		}
		h := sha1.New()
		fmt.Fprintf(h, "tree %d\x00", body.Len())
		h.Write(body.Bytes())
		sum := h.Sum(nil)
		out[d] = hex.EncodeToString(sum)
		return sum
	}
	for _, d := range dirs {
		sum := hashTree(d)
		children[parent(d)] = append(children[parent(d)], child{name: path.Base(d), dir: true, oid: sum})
	}
	hashTree("")
	return out
}
