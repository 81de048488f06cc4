// Command storage_fileserver serves one file with net/http's ServeContent
// (sendfile), the baseline bench/storage_serve.sh compares hubmirror serve
// with: the fastest a Go HTTP server sends a file on this machine.
//
// Usage: storage_fileserver FILE ADDR
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: storage_fileserver FILE ADDR")
		os.Exit(2)
	}
	path := os.Args[1]
	ln, err := net.Listen("tcp", os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, "file", st.ModTime(), f)
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
