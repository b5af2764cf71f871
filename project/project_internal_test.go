package project

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// failingWriter accepts n bytes, then fails as a full disk does.
type failingWriter struct {
	w io.Writer
	n int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, syscall.ENOSPC
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestSaveDiskFullKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(dir, "full")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, ProjectFile)
	old, _ := os.ReadFile(file)
	wrapWriter = func(w io.Writer) io.Writer { return &failingWriter{w: w, n: 20} }
	defer func() { wrapWriter = func(w io.Writer) io.Writer { return w } }()
	p.Name = "a much longer name that makes the file bigger than before"
	err = p.Save()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Save on a full disk: %v", err)
	}
	now, _ := os.ReadFile(file)
	if string(now) != string(old) {
		t.Errorf("project.json damaged by a failed save:\n%s", now)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != ProjectFile && !e.IsDir() {
			t.Errorf("failed save left %s behind", e.Name())
		}
	}
	if q, err := Open(dir); err != nil || q.Name != "full" {
		t.Errorf("reopening after a failed save: %v %v", q, err)
	}
}

func TestMigrateFramework(t *testing.T) {
	// A missing step is an error, not a silent skip.
	saved := migrations
	defer func() { migrations = saved }()
	migrations = map[int]func(map[string]json.RawMessage) error{}
	if _, err := decodeProject([]byte(`{"version": 0, "name": "x"}`)); err == nil {
		t.Error("decoding version 0 without a migration succeeded")
	}
	migrations = saved
	p, err := decodeProject([]byte(`{"name": "x", "data": "mnist"}`))
	if err != nil || p.Dataset.Source != "mnist" || p.Dataset.Preprocess != (Preprocess{Size: 28, Channels: 1}) || p.Version != CurrentVersion {
		t.Errorf("version 0: %+v %v", p, err)
	}
	for _, bad := range []string{`{"data": 5}`, `{"data": "x", "dataset": {}}`, `{"data": "x", "image_size": "big"}`} {
		if _, err := decodeProject([]byte(bad)); err == nil {
			t.Errorf("%s: migration succeeded", bad)
		}
	}
}
