//go:build !amd64 || purego

package kernels

// Without assembly the W8A8 tile is the Go one.
func w8a8Active() w8a8Impl { return w8a8GoImpl }

// w8a8Impls lists the tiles this machine can run, for tests.
func w8a8Impls() []w8a8Impl { return []w8a8Impl{w8a8GoImpl} }

// setW8A8Features has nothing to turn off without assembly.
func setW8A8Features(vnni512, avxvnni, avx2 bool) {}
