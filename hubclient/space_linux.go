package hubclient

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fallocateKeepSize allocates the disk blocks of the first size bytes of f
// without changing its size (FALLOC_FL_KEEP_SIZE): the file still ends
// where its written data ends (huggingface_hub resumes an .incomplete file
// from its size), but the space is the file's, and a disk too small says so
// now rather than after part of the download.
func fallocateKeepSize(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	for {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// reserveSpace reserves the blocks of a download of size bytes into f. A
// full disk or quota is an error; a file system that cannot preallocate is
// not (the download then finds out as it writes, as it would anyway).
func reserveSpace(f *os.File, size int64) error {
	err := fallocateKeepSize(f, size)
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EFBIG) {
		return err
	}
	return nil
}

// releaseSpace gives back the blocks reserved for the parts of a download
// of size bytes into f that have not been written: those beyond the end of
// the file by truncating it to its size (punching a hole there does nothing
// on ext4), and the ranges below it missing from have by punching holes
// (FALLOC_FL_PUNCH_HOLE). The written data stays for a later run to resume.
func releaseSpace(f *os.File, have rangeSet, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := min(st.Size(), size)
	errs := []error{f.Truncate(st.Size())}
	for _, m := range have.missing(0, end) {
		for {
			err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, m.Start, m.End-m.Start)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
				errs = append(errs, err)
			}
			break
		}
	}
	return errors.Join(errs...)
}
