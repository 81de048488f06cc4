package hubproto

import "testing"

func TestRepoTypes(t *testing.T) {
	for _, c := range []struct {
		qualified, typ, id, api, folder string
	}{
		{"org/name", RepoTypeModel, "org/name", "/api/models/org/name", "models--org--name"},
		{"gpt2", RepoTypeModel, "gpt2", "/api/models/gpt2", "models--gpt2"},
		{"datasets/org/name", RepoTypeDataset, "org/name", "/api/datasets/org/name", "datasets--org--name"},
		{"datasets/squad", RepoTypeDataset, "squad", "/api/datasets/squad", "datasets--squad"},
		{"spaces/org/app", RepoTypeSpace, "org/app", "/api/spaces/org/app", "spaces--org--app"},
	} {
		typ, id := SplitRepo(c.qualified)
		if typ != c.typ || id != c.id || JoinRepo(typ, id) != c.qualified || APIPath(c.qualified) != c.api || FolderName(c.qualified) != c.folder {
			t.Errorf("%s: %s %s %s %s", c.qualified, typ, id, APIPath(c.qualified), FolderName(c.qualified))
		}
		if back, ok := ParseFolderName(c.folder); !ok || back != c.qualified {
			t.Errorf("ParseFolderName(%s) = %s %v, want %s", c.folder, back, ok, c.qualified)
		}
	}
	if _, ok := ParseFolderName("org--name"); ok {
		t.Error("a folder without a type parses")
	}
	for _, c := range []struct {
		repoType, id, want string
		ok                 bool
	}{
		{"", "org/name", "org/name", true},
		{"model", "org/name", "org/name", true},
		{"dataset", "org/name", "datasets/org/name", true},
		{"datasets", "org/name", "datasets/org/name", true},
		{"Space", "org/app", "spaces/org/app", true},
		{"", "datasets/org/name", "datasets/org/name", true},
		{"dataset", "datasets/org/name", "datasets/org/name", true},
		{"space", "datasets/org/name", "", false},
		{"model", "datasets/org/name", "", false},
		{"gguf", "org/name", "", false},
	} {
		got, err := QualifyRepo(c.repoType, c.id)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("QualifyRepo(%q, %q) = %q, %v; want %q ok %v", c.repoType, c.id, got, err, c.want, c.ok)
		}
	}
}
