package bootimage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/bootimage"
)

func TestCheckStatic(t *testing.T) {
	static := buildTestInit(t)
	if err := bootimage.CheckStatic(static); err != nil {
		t.Errorf("CGO_ENABLED=0 Go binary: %v", err)
	}
	err := bootimage.CheckStatic("/bin/ls")
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "ld-linux") {
		t.Errorf("/bin/ls: got %v, want a dynamically-linked error naming the loader", err)
	}
	script := filepath.Join(t.TempDir(), "init.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)
	if err := bootimage.CheckStatic(script); err == nil || !strings.Contains(err.Error(), "not an ELF binary") {
		t.Errorf("shell script: got %v, want not-an-ELF error", err)
	}
	if err := bootimage.CheckStatic(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestResolveELFDepsHostBinary(t *testing.T) {
	const bin = "/usr/sbin/mke2fs"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s missing (e2fsprogs is part of every Debian install): %v", bin, err)
	}
	deps, err := bootimage.ResolveELFDeps(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if deps.Interp != "/lib64/ld-linux-x86-64.so.2" {
		t.Errorf("interp = %q", deps.Interp)
	}
	bases := map[string]bool{}
	for _, l := range deps.Libs {
		bases[filepath.Base(l)] = true
		if _, err := os.Stat(l); err != nil {
			t.Errorf("resolved library %s: %v", l, err)
		}
	}
	// mke2fs links libext2fs, libe2p and libcom_err directly and libc
	// through them.
	for _, want := range []string{"libext2fs.so.2", "libe2p.so.2", "libcom_err.so.2", "libc.so.6"} {
		if !bases[want] {
			t.Errorf("%s not among resolved libraries %v", want, deps.Libs)
		}
	}

	// With no library directories the same binary cannot resolve, and the
	// error names what is missing.
	_, err = bootimage.ResolveELFDeps(bin, []string{t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "needs lib") {
		t.Errorf("empty lib dirs: got %v, want a not-found error naming the library", err)
	}

	static, err := bootimage.ResolveELFDeps(buildTestInit(t), nil)
	if err != nil || static.Interp != "" || len(static.Libs) != 0 {
		t.Errorf("static binary: got %+v, %v; want no interpreter and no libraries", static, err)
	}
}
