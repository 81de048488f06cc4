package torch

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error Open, OpenIndex and Parse return wraps one of
// these (or an os/fs error), so callers can tell them apart with errors.Is.
var (
	// ErrFormat: the file is not a PyTorch checkpoint this package reads, or
	// its container (zip archive, legacy stream, index JSON) is malformed.
	ErrFormat = errors.New("torch: not a valid checkpoint")
	// ErrPickle: a pickle stream is malformed (truncated, unknown opcode,
	// stack underflow, missing memo entry, absurd length) or exceeds a limit
	// (nesting depth, object count).
	ErrPickle = errors.New("torch: invalid pickle")
	// ErrForbiddenGlobal: the pickle references a global outside the
	// allowlist. The error is a *ForbiddenGlobalError naming it.
	ErrForbiddenGlobal = errors.New("torch: forbidden pickle global")
	// ErrBadArguments: an allowed global was called (REDUCE, NEWOBJ, INST,
	// OBJ) with arguments it does not take, or an object was used in a way
	// the real function would not accept.
	ErrBadArguments = errors.New("torch: bad arguments to pickle global")
	// ErrStorage: a storage record is missing, has another size than the
	// pickle claims, or a tensor's extent reaches past its storage.
	ErrStorage = errors.New("torch: invalid storage")
	// ErrUnsupported: a valid checkpoint feature this package does not read
	// (TorchScript archives, complex or quantized storages, compression
	// methods other than store and deflate).
	ErrUnsupported = errors.New("torch: unsupported checkpoint feature")
	// ErrNotStateDict: the pickle holds no dictionary of tensors.
	ErrNotStateDict = errors.New("torch: checkpoint holds no state dict")
	// ErrIndex: a sharded checkpoint's index JSON is malformed, names an
	// unsafe shard file, or maps a tensor to a shard that lacks it.
	ErrIndex = errors.New("torch: invalid checkpoint index")
)

// ForbiddenGlobalError reports a pickle global outside the allowlist. It is
// returned when the GLOBAL, STACK_GLOBAL or INST opcode is read, before
// anything is built from the global. errors.Is(err, ErrForbiddenGlobal)
// holds for it.
type ForbiddenGlobalError struct {
	// File is the checkpoint file (for zip checkpoints, with the pickle's
	// record name after a colon).
	File string
	// Module and Name spell the global as the pickle wrote it.
	Module, Name string
}

func (e *ForbiddenGlobalError) Error() string {
	return fmt.Sprintf("torch: %s: forbidden pickle global %s.%s: only tensor rebuild functions, storage types, dtypes and containers are allowed", e.File, e.Module, e.Name)
}

// Is makes errors.Is(err, ErrForbiddenGlobal) true.
func (e *ForbiddenGlobalError) Is(target error) bool { return target == ErrForbiddenGlobal }

// locatedError prefixes an error of this package with where it happened,
// keeping it testable with errors.Is/As.
type locatedError struct {
	where string
	err   error
}

func (e *locatedError) Error() string {
	return "torch: " + e.where + ": " + strings.TrimPrefix(e.err.Error(), "torch: ")
}

func (e *locatedError) Unwrap() error { return e.err }

// locate says where err happened; a *ForbiddenGlobalError, which names its
// file already, passes through unchanged.
func locate(where string, err error) error {
	var fe *ForbiddenGlobalError
	if errors.As(err, &fe) {
		return err
	}
	return &locatedError{where: where, err: err}
}
