package hubtest_test

import (
	"testing"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto/prototest"
)

// TestConformance runs the protocol suite against the test hub, as
// mirror's TestConformance runs it against the mirror's server.
func TestConformance(t *testing.T) {
	prototest.Run(t, prototest.Config{New: func(t *testing.T, setup prototest.Setup) prototest.Server {
		h := hubtest.New(t)
		if setup.TreePageSize > 0 {
			h.PageSize = setup.TreePageSize
		}
		if setup.Token != "" {
			h.SetToken(setup.Token)
		}
		commits := map[string][]string{}
		for _, r := range setup.Repos {
			repo := h.AddRepo(r.ID)
			repo.SetGated(setup.Token != "")
			var previous []string
			for _, c := range r.Commits {
				for _, p := range previous {
					repo.RemoveFile(p)
				}
				previous = previous[:0]
				for _, f := range c.Files {
					repo.AddContent(f.Path, hubtest.Bytes(f.Data), f.LFS)
					previous = append(previous, f.Path)
				}
				for _, ref := range c.Refs {
					if ref != "main" {
						repo.Tag(ref)
					}
				}
				commits[r.ID] = append(commits[r.ID], repo.Commit())
			}
		}
		return prototest.Server{URL: h.URL(), Commits: commits}
	}})
}
