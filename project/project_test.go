package project_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genstudio/genstudio/project"
)

func TestCreateOpenSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Project")
	p, err := project.Create(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "My Project" || p.Version != project.CurrentVersion || p.Dataset.Source != project.MNISTSource {
		t.Errorf("new project %+v", p)
	}
	for _, sub := range []string{"project.json", "runs", "exports", "cache"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("missing %s: %v", sub, err)
		}
	}
	if _, err := project.Create(dir, "again"); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("Create over a project: %v", err)
	}

	p.Model = project.ModelRef{Family: "vae", Arch: "conv", Config: json.RawMessage(`{"latent":16}`)}
	p.Training = project.TrainingSettings{Steps: 500, PreviewEvery: 50, Seed: 1<<63 + 7}
	id := p.NewRunID()
	p.Runs = append(p.Runs, project.RunRef{ID: id, Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Family: "vae", Steps: 500})
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	q, err := project.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sprint(q.Model.Config) != sprint(json.RawMessage(`{"latent":16}`)) || q.Training != p.Training ||
		len(q.Runs) != 1 || q.Runs[0].ID != id || !q.Runs[0].Created.Equal(p.Runs[0].Created) || q.Dir() != p.Dir() {
		t.Errorf("reopened project differs:\n%+v\n%+v", p, q)
	}
	// Open also takes the project.json itself.
	if r, err := project.Open(filepath.Join(dir, "project.json")); err != nil || r.Dir() != p.Dir() {
		t.Errorf("Open(project.json): %v, %v", r, err)
	}
	if got := q.RunDir(id); got != filepath.Join(p.Dir(), "runs", id) {
		t.Errorf("RunDir = %s", got)
	}
	if got := q.RunDir("../../etc"); filepath.Dir(got) != filepath.Join(p.Dir(), "runs") {
		t.Errorf("RunDir escapes runs/: %s", got)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "project.json"))
	for _, key := range []string{`"preview_every": 50`, `"seed": 9223372036854775815`, `"preprocess"`, `"runs"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("project.json lacks %s:\n%s", key, raw)
		}
	}
}

func TestNewRunIDUnique(t *testing.T) {
	p, err := project.Create(t.TempDir(), "ids")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 200 {
		id := p.NewRunID()
		if seen[id] || strings.ContainsAny(id, `/\: `) {
			t.Fatalf("bad or duplicate run id %q", id)
		}
		seen[id] = true
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"truncated", `{"version": 1, "name": "x", "dataset": {"sou`, "truncated"},
		{"not JSON", "name = x\n", "not valid JSON"},
		{"empty", "", "empty"},
		{"array", `[1,2]`, "wrong type"},
		{"null", `null`, "expected a JSON object"},
		{"newer", `{"version": 7, "name": "x"}`, "project.json is from a newer Gen Studio (version 7); this one reads up to 1"},
		{"negative", `{"version": -1}`, "version"},
		{"bad version", `{"version": "one"}`, "version"},
		{"bad size", `{"version": 1, "dataset": {"source": "mnist", "preprocess": {"size": 100000, "channels": 1}}}`, "out of range"},
		{"bad run", `{"version": 1, "runs": [{"id": "../x"}]}`, "invalid id"},
		{"wrong type", `{"version": 1, "training": {"steps": "many"}}`, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "project.json"), []byte(tt.content))
			_, err := project.Open(dir)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), filepath.Join(dir, "project.json")) {
				t.Errorf("error %q should contain %q and name the file", err, tt.want)
			}
		})
	}
	if _, err := project.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a Gen Studio project") {
		t.Errorf("Open of a plain folder: %v", err)
	}
}

func TestOpenMigratesVersion0(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "images", "a.png"), encodePNG(t, uniformGray(4, 4, 1)))
	writeFile(t, filepath.Join(dir, "project.json"), []byte(`{"name": "old", "data": "images", "image_size": 32,
		"training": {"steps": 10}}`))
	p, err := project.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := project.DatasetRef{Source: "images", Preprocess: project.Preprocess{Size: 32, Channels: 1}}
	if p.Version != project.CurrentVersion || p.Dataset != want || p.Name != "old" || p.Training.Steps != 10 {
		t.Errorf("migrated %+v", p)
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "project.json"))
	if strings.Contains(string(raw), `"data"`) || !strings.Contains(string(raw), `"version": 1`) {
		t.Errorf("saved migrated project:\n%s", raw)
	}
}

func TestSaveFailureKeepsOldFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores folder permissions")
	}
	dir := t.TempDir()
	p, err := project.Create(dir, "keep")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "project.json"))
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	p.Name = "changed"
	if err := p.Save(); err == nil {
		t.Fatal("Save into a read-only folder succeeded")
	}
	now, _ := os.ReadFile(filepath.Join(dir, "project.json"))
	if string(now) != string(old) {
		t.Errorf("project.json changed by a failed save")
	}
}

func TestMovedProjectResolvesDataset(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "proj")
	p, err := project.Create(dir, "movable")
	if err != nil {
		t.Fatal(err)
	}
	png := encodePNG(t, uniformGray(8, 8, 77))
	writeFile(t, filepath.Join(dir, "data", "cats", "1.png"), png)
	writeFile(t, filepath.Join(dir, "data", "dogs", "2.png"), png)
	outside := filepath.Join(root, "shared")
	writeFile(t, filepath.Join(outside, "x.png"), png)

	p.SetDataset(filepath.Join(outside), project.Preprocess{Size: 4, Channels: 1})
	if p.Dataset.Source != outside {
		t.Errorf("outside data set stored as %q, want absolute %q", p.Dataset.Source, outside)
	}
	p.SetDataset(filepath.Join(dir, "data"), project.Preprocess{Size: 4, Channels: 1})
	if p.Dataset.Source != "data" {
		t.Errorf("inside data set stored as %q, want \"data\"", p.Dataset.Source)
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.LoadDataset(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	moved := filepath.Join(root, "elsewhere", "proj2")
	os.MkdirAll(filepath.Dir(moved), 0o755)
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	q, err := project.Open(moved)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.DataSource(); got != filepath.Join(moved, "data") {
		t.Errorf("moved project resolves its data set to %s", got)
	}
	d, _, err := q.LoadDataset(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || sprint(d.Classes) != "[cats dogs]" {
		t.Errorf("moved project's data set: %d images, classes %v", d.Len(), d.Classes)
	}
	if got := q.ResolvePath(outside); got != outside {
		t.Errorf("absolute path resolved to %s", got)
	}
	if q.ResolvePath(project.MNISTSource) != project.MNISTSource || q.RelPath(project.MNISTSource) != project.MNISTSource {
		t.Errorf("mnist is not kept as is")
	}
	if got := q.RelPath(filepath.Join(moved, "mnist")); got != "./mnist" {
		t.Errorf("a folder named mnist is stored as %q", got)
	}
}
