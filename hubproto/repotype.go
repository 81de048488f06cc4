package hubproto

import (
	"fmt"
	"strings"
)

// Repo types. The Hub holds models, datasets and spaces; each has its own
// namespace, and the same "org/name" may be a model and a dataset.
const (
	RepoTypeModel   = "model"
	RepoTypeDataset = "dataset"
	RepoTypeSpace   = "space"
)

// RepoTypes lists the repo types, the default first.
var RepoTypes = []string{RepoTypeModel, RepoTypeDataset, RepoTypeSpace}

// A repo is named across the code by its qualified id: a model by its id
// ("org/name", "gpt2"), a dataset or space by its id after "datasets/" or
// "spaces/" ("datasets/org/name"), as the Hub's URLs write them
// (https://huggingface.co/datasets/org/name). The Hub reserves "datasets"
// and "spaces" as names, so no model id starts with them. The qualified id
// is what a /resolve URL starts with; API paths put the type's plural
// after /api/ and the id after it (APIPath); the Hugging Face cache and the
// mirror name the repo's folder "<type>s--org--name" (FolderName).

// ParseRepoType checks a --repo-type value; "" is a model. The plural
// ("datasets") is accepted too.
func ParseRepoType(s string) (string, error) {
	switch t := strings.TrimSuffix(strings.ToLower(s), "s"); t {
	case "":
		return RepoTypeModel, nil
	case RepoTypeModel, RepoTypeDataset, RepoTypeSpace:
		return t, nil
	}
	return "", fmt.Errorf("repo type %q: want model, dataset or space", s)
}

// SplitRepo splits a qualified id into its type and plain id:
// "datasets/org/name" is ("dataset", "org/name"), "org/name" is ("model",
// "org/name").
func SplitRepo(qualified string) (repoType, id string) {
	if rest, ok := strings.CutPrefix(qualified, "datasets/"); ok {
		return RepoTypeDataset, rest
	}
	if rest, ok := strings.CutPrefix(qualified, "spaces/"); ok {
		return RepoTypeSpace, rest
	}
	return RepoTypeModel, qualified
}

// QualifyRepo returns the qualified id of the repo id of repoType ("" or
// "model": the id itself). An id that already names its type
// ("datasets/org/name") is kept when the type agrees, and an error when it
// does not; "models/org/name" is read as the model "org/name" only when
// repoType asks for a model explicitly, since a model's org may be called
// "models".
func QualifyRepo(repoType, id string) (string, error) {
	t, err := ParseRepoType(repoType)
	if err != nil {
		return "", err
	}
	if got, plain := SplitRepo(id); got != RepoTypeModel {
		if repoType != "" && got != t {
			return "", fmt.Errorf("repo %q is a %s, but the repo type is %s", id, got, t)
		}
		return JoinRepo(got, plain), nil
	}
	return JoinRepo(t, id), nil
}

// JoinRepo returns the qualified id of a plain id of repoType.
func JoinRepo(repoType, id string) string {
	switch repoType {
	case RepoTypeDataset:
		return "datasets/" + id
	case RepoTypeSpace:
		return "spaces/" + id
	}
	return id
}

// APIPath returns the API path of a repo named by its qualified id:
// "/api/models/org/name", "/api/datasets/org/name".
func APIPath(qualified string) string {
	t, id := SplitRepo(qualified)
	return "/api/" + t + "s/" + id
}

// FolderName returns the name of the folder that holds a repo in the
// Hugging Face cache and in a mirror: "models--org--name",
// "datasets--org--name", "spaces--org--name".
func FolderName(qualified string) string {
	t, id := SplitRepo(qualified)
	return t + "s--" + strings.ReplaceAll(id, "/", "--")
}

// ParseFolderName reads a FolderName back into a qualified id (its plain id
// unchecked); ok is false when dir has no type prefix.
func ParseFolderName(dir string) (qualified string, ok bool) {
	for _, t := range RepoTypes {
		if rest, found := strings.CutPrefix(dir, t+"s--"); found {
			return JoinRepo(t, strings.ReplaceAll(rest, "--", "/")), true
		}
	}
	return "", false
}

// PathsInfoRequest is the form of POST /api/{type}s/{repo}/paths-info/{rev}
// (application/x-www-form-urlencoded, "paths" repeated, "expand" true or
// false, or the same as JSON).
type PathsInfoRequest struct {
	Paths  []string `json:"paths"`
	Expand bool     `json:"expand"`
}

// LastCommit is the last commit that touched a path, in an expanded tree
// entry.
type LastCommit struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Date  string `json:"date"`
}
