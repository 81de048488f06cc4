// Command pull_hub runs the test hub (hubtest) as a process, for
// bench/pull.sh and for checks with other clients (huggingface_hub).
//
// By default it serves a model repository "bench/model" holding
// model.safetensors, SIZE bytes of deterministic pseudo-random data generated
// on the fly, behind an optional per-connection bandwidth cap, and prints
// the hub URL, the CDN URL of the file and its sha256 on stdout, one per
// line. With -spec it serves the repository a JSON spec describes instead
// (hubclient/testdata/layout_repo.json) and prints the hub URL and the
// commit. It then serves until it is killed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

type spec struct {
	RepoID string `json:"repo_id"`
	Files  []struct {
		Path   string  `json:"path"`
		Text   *string `json:"text"`
		Repeat string  `json:"repeat"`
		Count  int     `json:"count"`
		LFS    bool    `json:"lfs"`
	} `json:"files"`
}

func main() {
	size := flag.Int64("size", 1<<30, "file size in bytes")
	capBps := flag.Int64("cap", 0, "per-connection bandwidth cap in bytes per second (0: none)")
	specPath := flag.String("spec", "", "serve the repository this JSON spec describes")
	flag.Parse()
	hub := hubtest.NewServer()
	defer hub.Close()
	hub.SetBandwidth(*capBps)
	if *specPath != "" {
		data, err := os.ReadFile(*specPath)
		if err != nil {
			log.Fatal(err)
		}
		var s spec
		if err := json.Unmarshal(data, &s); err != nil {
			log.Fatalf("%s: %v", *specPath, err)
		}
		repo := hub.AddRepo(s.RepoID)
		for _, f := range s.Files {
			content := strings.Repeat(f.Repeat, f.Count)
			if f.Text != nil {
				content = *f.Text
			}
			repo.AddContent(f.Path, hubtest.Bytes([]byte(content)), f.LFS)
		}
		fmt.Println(hub.URL())
		fmt.Println(repo.Commit())
	} else {
		repo := hub.AddRepo("bench/model").AddContent("model.safetensors", hubtest.PseudoRandom(42, *size), true)
		f := repo.File("model.safetensors")
		fmt.Println(hub.URL())
		fmt.Println(hub.BlobURL(f))
		fmt.Println(f.SHA256)
	}
	os.Stdout.Sync()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
