package torch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// markerPrefix is where gen.py's payloads write when executed:
// markerPrefix + the file's base name without extension.
const markerPrefix = "/tmp/hubmirror-torch-pwned-"

// hostileCases lists every file of testdata/hostile with the error the
// reader must return and, for forbidden globals, the global it must name.
var hostileCases = map[string]struct {
	err    error
	global string
}{
	// Code execution through a forbidden global.
	"os_system.pkl":                   {ErrForbiddenGlobal, "os.system"},
	"posix_system.pkl":                {ErrForbiddenGlobal, "posix.system"},
	"nt_system.pkl":                   {ErrForbiddenGlobal, "nt.system"},
	"builtins_eval.pkl":               {ErrForbiddenGlobal, "builtins.eval"},
	"builtins_exec.pkl":               {ErrForbiddenGlobal, "builtins.exec"},
	"builtins_getattr.pkl":            {ErrForbiddenGlobal, "builtins.getattr"},
	"builtins_open.pkl":               {ErrForbiddenGlobal, "builtins.open"},
	"builtins_import.pkl":             {ErrForbiddenGlobal, "builtins.__import__"},
	"subprocess_popen.pkl":            {ErrForbiddenGlobal, "subprocess.Popen"},
	"subprocess_check_output.pkl":     {ErrForbiddenGlobal, "subprocess.check_output"},
	"runpy_run_code.pkl":              {ErrForbiddenGlobal, "runpy._run_code"},
	"importlib_import_module.pkl":     {ErrForbiddenGlobal, "importlib.import_module"},
	"functools_partial.pkl":           {ErrForbiddenGlobal, "functools.partial"},
	"torch_load_from_bytes.pkl":       {ErrForbiddenGlobal, "torch.storage._load_from_bytes"},
	"stack_global_memo.pkl":           {ErrForbiddenGlobal, "os.system"},
	"stack_global_long_binget.pkl":    {ErrForbiddenGlobal, "builtins.exec"},
	"inst_opcode.pkl":                 {ErrForbiddenGlobal, "os.system"},
	"obj_opcode.pkl":                  {ErrForbiddenGlobal, "os.system"},
	"zip_data_pkl.bin":                {ErrForbiddenGlobal, "os.system"},
	"zip_hidden_in_state_dict.bin":    {ErrForbiddenGlobal, "posix.system"},
	"legacy_hidden_in_state_dict.bin": {ErrForbiddenGlobal, "posix.system"},
	"nn_module.bin":                   {ErrForbiddenGlobal, "torch.nn.modules.linear.Linear"},
	// Allowed globals called the wrong way.
	"bad_args_rebuild_tensor.pkl": {ErrBadArguments, "torch._utils._rebuild_tensor_v2"},
	"bad_args_ordered_dict.pkl":   {ErrBadArguments, "collections.OrderedDict"},
	"bad_args_codecs_encode.pkl":  {ErrBadArguments, "_codecs.encode"},
	"bad_args_storage_call.pkl":   {ErrBadArguments, "torch.FloatStorage"},
	"zip_bad_size_arg.bin":        {ErrBadArguments, "torch._utils._rebuild_tensor_v2"},
	// Storages and views that claim more than the file holds.
	"zip_huge_storage.bin":         {ErrStorage, ""},
	"zip_storage_outside.bin":      {ErrStorage, ""},
	"zip_storage_missing.bin":      {ErrStorage, ""},
	"zip_tensor_extent.bin":        {ErrStorage, ""},
	"zip_shape_overflow.bin":       {ErrStorage, ""},
	"zip_expand_bomb.bin":          {ErrStorage, ""},
	"legacy_huge_storage.bin":      {ErrStorage, ""},
	"legacy_count_lies.bin":        {ErrStorage, ""},
	"legacy_truncated_storage.bin": {ErrStorage, ""},
	"legacy_unlisted_storage.bin":  {ErrStorage, ""},
	"legacy_unknown_key.bin":       {ErrStorage, ""},
	"legacy_view_outside.bin":      {ErrStorage, ""},
	// Malformed pickles and resource bombs.
	"mark_bomb.pkl":             {ErrPickle, ""},
	"zip_list_bomb.bin":         {ErrNotStateDict, ""},
	"zip_dict_nesting_bomb.bin": {ErrPickle, ""},
	"zip_dag_bomb.bin":          {ErrPickle, ""},
	"zip_self_cycle.bin":        {ErrPickle, ""},
	"memo_missing.pkl":          {ErrPickle, ""},
	"stack_underflow.pkl":       {ErrPickle, ""},
	"pop_below_mark.pkl":        {ErrPickle, ""},
	"unknown_opcode.pkl":        {ErrPickle, ""},
	"ext_opcode.pkl":            {ErrPickle, ""},
	"absurd_length.pkl":         {ErrPickle, ""},
	"negative_binstring.pkl":    {ErrPickle, ""},
	"no_stop.pkl":               {ErrPickle, ""},
	"truncated_legacy.bin":      {ErrPickle, ""},
	// Not checkpoints at all.
	"truncated_zip.bin":         {ErrFormat, ""},
	"zip_bad_byteorder.bin":     {ErrFormat, ""},
	"not_a_checkpoint.bin":      {ErrFormat, ""},
	"pickle_not_checkpoint.pkl": {ErrFormat, ""},
}

// TestHostile opens every hostile file: each must fail with its error, name
// its global, and leave no marker behind (its payload never ran).
func TestHostile(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		base := filepath.Base(path)
		seen[base] = true
		c, ok := hostileCases[base]
		if !ok {
			t.Errorf("%s has no expectation in hostileCases", base)
			continue
		}
		t.Run(base, func(t *testing.T) {
			marker := markerPrefix + strings.TrimSuffix(base, filepath.Ext(base))
			if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			g, err := Open(path)
			if err == nil {
				g.Close()
				t.Fatal("opened without error")
			}
			if !errors.Is(err, c.err) {
				t.Errorf("error %v, want %v", err, c.err)
			}
			if c.global != "" {
				if !strings.Contains(err.Error(), c.global) {
					t.Errorf("error %q does not name %s", err, c.global)
				}
				var fe *ForbiddenGlobalError
				if c.err == ErrForbiddenGlobal {
					if !errors.As(err, &fe) {
						t.Fatalf("error %v is not a *ForbiddenGlobalError", err)
					}
					if fe.Module+"."+fe.Name != c.global || !strings.HasPrefix(fe.File, path) {
						t.Errorf("ForbiddenGlobalError{File %q, %s.%s}, want %s in %s", fe.File, fe.Module, fe.Name, c.global, path)
					}
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Fatalf("marker %s exists: the payload ran (%v)", marker, err)
			}
		})
	}
	for name := range hostileCases {
		if !seen[name] {
			t.Errorf("hostileCases lists %s, which testdata/hostile lacks", name)
		}
	}
}
