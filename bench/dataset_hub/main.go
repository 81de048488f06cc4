// Command dataset_hub serves, for bench/dataset_rss.sh, a dataset of many
// small files from the test hub (hubtest) and walks a served tree listing.
//
//	dataset_hub [-files N] [-lfs K] [-repo datasets/bench/ds]
//
// runs the test hub with the dataset: N files (default 20,000) of about a
// hundred bytes each under data/{train,test,validation}/part-NN/, plus K
// (default 2) LFS files of 1 MiB, as a dataset viewer's layout of parquet
// shards; it prints the hub URL and the commit, one per line, then serves
// until it is killed.
//
//	dataset_hub -walk URL
//
// follows the Link rel="next" headers of a paginated tree listing from URL
// (e.g. .../api/datasets/bench/ds/tree/main?recursive=true), checks that
// each page is a JSON array, and prints the number of pages, files and
// directories.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

func main() {
	files := flag.Int("files", 20000, "small files in the dataset")
	lfs := flag.Int("lfs", 2, "LFS files of 1 MiB in the dataset")
	repoID := flag.String("repo", "datasets/bench/ds", "qualified id of the dataset")
	walk := flag.String("walk", "", "walk the paginated tree listing at this URL instead of serving")
	flag.Parse()
	if *walk != "" {
		if err := walkTree(*walk); err != nil {
			log.Fatal(err)
		}
		return
	}
	hub := hubtest.NewServer()
	defer hub.Close()
	hub.PageSize = 1000
	m := make(map[string][]byte, *files+*lfs)
	splits := []string{"train", "test", "validation"}
	for i := range *files {
		p := fmt.Sprintf("data/%s/part-%02d/%05d.json", splits[i%len(splits)], i/1000, i)
		m[p] = fmt.Appendf(nil, "{\"id\": %d, \"text\": \"row %d of the benchmark dataset, with some padding text\"}\n", i, i)
	}
	repo := hub.AddRepo(*repoID).AddFiles(m)
	for i := range *lfs {
		repo.AddContent(fmt.Sprintf("data/shard-%d.parquet", i), hubtest.PseudoRandom(uint64(i+1), 1<<20), true)
	}
	fmt.Println(hub.URL())
	fmt.Println(repo.Commit())
	os.Stdout.Sync()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

var nextLink = regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)

func walkTree(url string) error {
	pages, files, dirs := 0, 0, 0
	for url != "" {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		var page []struct {
			Type string `json:"type"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if err != nil {
			return fmt.Errorf("GET %s: %v", url, err)
		}
		pages++
		for _, e := range page {
			if e.Type == "directory" {
				dirs++
			} else {
				files++
			}
		}
		url = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			url = m[1]
		}
	}
	fmt.Printf("%d pages, %d files, %d directories\n", pages, files, dirs)
	return nil
}
