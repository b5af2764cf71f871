package project

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// CurrentVersion is the project.json format version this Gen Studio
// writes and the newest it reads.
const CurrentVersion = 1

// ProjectFile is the name of the project file inside a project folder.
const ProjectFile = "project.json"

// Sub-folders of a project folder.
const (
	// RunsFolder holds one folder per training run.
	RunsFolder = "runs"
	// ExportsFolder holds exported images and models.
	ExportsFolder = "exports"
	// CacheFolder holds caches that can be rebuilt (CacheLoad).
	CacheFolder = "cache"
)

// maxProjectFile caps the size of project.json read by Open.
const maxProjectFile = 64 << 20

// Project is a Gen Studio project: a folder holding project.json (this
// struct as JSON), runs/, exports/ and cache/.
type Project struct {
	Version  int              `json:"version"`
	Name     string           `json:"name"`
	Dataset  DatasetRef       `json:"dataset"`
	Model    ModelRef         `json:"model"`
	Training TrainingSettings `json:"training"`
	Runs     []RunRef         `json:"runs"`

	dir string // the project folder (absolute)
}

// DatasetRef says where a project's data come from and how they are
// shaped. Source is MNISTSource, a path relative to the project folder
// (slash-separated) when the data lie inside it, or an absolute path.
type DatasetRef struct {
	Source     string     `json:"source"`
	Preprocess Preprocess `json:"preprocess"`
}

// ModelRef names a project's model: its family (e.g. "vae", "dcgan",
// "ddpm"), architecture, and the family's own settings as raw JSON.
type ModelRef struct {
	Family string          `json:"family"`
	Arch   string          `json:"arch"`
	Config json.RawMessage `json:"config,omitempty"`
}

// TrainingSettings are a project's training parameters.
type TrainingSettings struct {
	Steps        int    `json:"steps"`
	PreviewEvery int    `json:"preview_every"`
	EvalEvery    int    `json:"eval_every,omitempty"` // a periodic evaluation every N steps (0: none)
	Seed         uint64 `json:"seed"`
}

// RunRef records one training run, stored in RunDir(ID).
type RunRef struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"` // the user's name for it (the id when empty)
	Created time.Time `json:"created"`
	Family  string    `json:"family"`
	Steps   int       `json:"steps"`
}

// Create makes a new project folder dir (and its parents) with
// project.json, runs/, exports/ and cache/. name defaults to the folder's
// name. The new project uses the built-in MNIST digits at 28×28 grayscale.
// A folder that already holds a project.json is an error.
func Create(dir, name string) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("creating project %s: %w", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(abs, ProjectFile)); err == nil {
		return nil, fmt.Errorf("creating project: %s already holds a Gen Studio project", abs)
	}
	for _, sub := range []string{RunsFolder, ExportsFolder, CacheFolder} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating project: %w", err)
		}
	}
	if strings.TrimSpace(name) == "" {
		name = filepath.Base(abs)
	}
	p := &Project{
		Version: CurrentVersion,
		Name:    name,
		Dataset: DatasetRef{Source: MNISTSource, Preprocess: Preprocess{Size: 28, Channels: 1}},
		Runs:    []RunRef{},
		dir:     abs,
	}
	if err := p.Save(); err != nil {
		return nil, fmt.Errorf("creating project: %w", err)
	}
	return p, nil
}

// Open reads the project in folder dir (dir may also name its project.json).
// A damaged project.json is an error naming the file; one written by a
// newer Gen Studio is refused; an older version is migrated in memory (Save
// writes it in the current version). Missing runs/, exports/ and cache/
// folders are recreated.
func Open(dir string) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening project %s: %w", dir, err)
	}
	if filepath.Base(abs) == ProjectFile {
		if fi, err := os.Stat(abs); err == nil && fi.Mode().IsRegular() {
			abs = filepath.Dir(abs)
		}
	}
	file := filepath.Join(abs, ProjectFile)
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening project: %s is not a Gen Studio project (no %s)", abs, ProjectFile)
		}
		return nil, fmt.Errorf("opening project: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxProjectFile+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("opening project: reading %s: %w", file, err)
	}
	if len(data) > maxProjectFile {
		return nil, fmt.Errorf("opening project: %s is larger than %d bytes", file, maxProjectFile)
	}
	p, err := decodeProject(data)
	if err != nil {
		return nil, fmt.Errorf("opening project: %s: %w", file, err)
	}
	p.dir = abs
	for _, sub := range []string{RunsFolder, ExportsFolder, CacheFolder} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("opening project: %w", err)
		}
	}
	return p, nil
}

// decodeProject parses project.json, migrating older versions, and checks
// the result.
func decodeProject(data []byte) (*Project, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errors.New("the file is empty")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, jsonErr(err)
	}
	if doc == nil {
		return nil, errors.New("not a project file: expected a JSON object")
	}
	version := 0
	if raw, ok := doc["version"]; ok {
		if err := json.Unmarshal(raw, &version); err != nil {
			return nil, fmt.Errorf("bad \"version\": %w", jsonErr(err))
		}
	}
	if version > CurrentVersion {
		return nil, fmt.Errorf("project.json is from a newer Gen Studio (version %d); this one reads up to %d", version, CurrentVersion)
	}
	if version < 0 {
		return nil, fmt.Errorf("bad \"version\" %d", version)
	}
	if err := migrate(doc, version); err != nil {
		return nil, err
	}
	migrated, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("re-encoding migrated project: %w", err)
	}
	var p Project
	if err := json.Unmarshal(migrated, &p); err != nil {
		return nil, jsonErr(err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Runs == nil {
		p.Runs = []RunRef{}
	}
	return &p, nil
}

// jsonErr turns a JSON decoding error into a readable one.
func jsonErr(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err.Error() == "unexpected end of JSON input":
		return fmt.Errorf("the file is truncated (unexpected end of JSON input): %w", err)
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON (at byte %d): %w", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type (%s where %s was expected): %w", typ.Field, typ.Value, typ.Type, err)
	}
	return fmt.Errorf("not a valid project file: %w", err)
}

// validate checks a decoded project's values.
func (p *Project) validate() error {
	pre := p.Dataset.Preprocess
	switch {
	case pre.Size < 0 || pre.Size > maxFolderImageSize:
		return fmt.Errorf("dataset image size %d is out of range 0..%d", pre.Size, maxFolderImageSize)
	case pre.Channels != 0 && pre.Channels != 1 && pre.Channels != 3:
		return fmt.Errorf("dataset channels must be 1 or 3, got %d", pre.Channels)
	case p.Training.Steps < 0:
		return fmt.Errorf("training steps %d is negative", p.Training.Steps)
	case p.Training.PreviewEvery < 0:
		return fmt.Errorf("training preview_every %d is negative", p.Training.PreviewEvery)
	}
	for i, r := range p.Runs {
		if !safeRunID(r.ID) {
			return fmt.Errorf("run %d has an invalid id %q", i, r.ID)
		}
	}
	return nil
}

// migrations[v] turns a version-v project document into version v+1.
var migrations = map[int]func(doc map[string]json.RawMessage) error{
	0: migrate0to1,
}

// migrate brings a project document of the given version up to
// CurrentVersion, one step at a time.
func migrate(doc map[string]json.RawMessage, version int) error {
	for v := version; v < CurrentVersion; v++ {
		step, ok := migrations[v]
		if !ok {
			return fmt.Errorf("no migration from project version %d", v)
		}
		if err := step(doc); err != nil {
			return fmt.Errorf("migrating project from version %d to %d: %w", v, v+1, err)
		}
		doc["version"] = json.RawMessage(fmt.Sprint(v + 1))
	}
	return nil
}

// migrate0to1 upgrades version 0, which named the data set by a plain
// string "data" and kept the image size in "image_size" (28×28 grayscale
// when absent), to the "dataset" object of version 1.
func migrate0to1(doc map[string]json.RawMessage) error {
	raw, hasData := doc["data"]
	if !hasData {
		return nil
	}
	if _, has := doc["dataset"]; has {
		return errors.New(`both "data" and "dataset" are present`)
	}
	var src string
	if err := json.Unmarshal(raw, &src); err != nil {
		return fmt.Errorf(`"data" is not a string: %w`, err)
	}
	size := 28
	if rs, ok := doc["image_size"]; ok {
		if err := json.Unmarshal(rs, &size); err != nil {
			return fmt.Errorf(`"image_size" is not a number: %w`, err)
		}
	}
	ref, err := json.Marshal(DatasetRef{Source: src, Preprocess: Preprocess{Size: size, Channels: 1}})
	if err != nil {
		return err
	}
	doc["dataset"] = ref
	delete(doc, "data")
	delete(doc, "image_size")
	return nil
}

// Save writes project.json atomically: to a temporary file in the project
// folder, synced, then renamed over the old one, so a failed save (a full
// disk, a read-only folder) leaves the previous project.json intact. It
// writes the current Version.
func (p *Project) Save() error {
	if p.dir == "" {
		return errors.New("saving project: the project has no folder (use Create or Open)")
	}
	p.Version = CurrentVersion
	if p.Runs == nil {
		p.Runs = []RunRef{}
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("saving project %s: %w", p.Name, err)
	}
	data = append(data, '\n')
	err = writeAtomic(filepath.Join(p.dir, ProjectFile), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("saving project %s: %w", p.Name, err)
	}
	return nil
}

// Dir returns the project folder (an absolute path).
func (p *Project) Dir() string { return p.dir }

// RunDir returns the folder of run id, under runs/. Characters that could
// leave that folder (separators, "..") are replaced by "_".
func (p *Project) RunDir(id string) string {
	return filepath.Join(p.dir, RunsFolder, sanitizeRunID(id))
}

// AllRuns lists the runs the project records, then the folders under
// runs/ it does not record that hold a run (a metrics.jsonl file), such as
// a run a PyTorch job exported from the project wrote there, by name. The
// latter have their folder name as ID and the folder's time as Created.
func (p *Project) AllRuns() []RunRef {
	out := slices.Clone(p.Runs)
	known := map[string]bool{}
	for _, r := range p.Runs {
		known[sanitizeRunID(r.ID)] = true
	}
	entries, _ := os.ReadDir(filepath.Join(p.dir, RunsFolder))
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		st, err := os.Stat(filepath.Join(p.dir, RunsFolder, e.Name(), "metrics.jsonl"))
		if err != nil {
			continue
		}
		out = append(out, RunRef{ID: e.Name(), Created: st.ModTime().UTC()})
	}
	return out
}

// CacheDir returns the project's cache folder, for CacheLoad.
func (p *Project) CacheDir() string { return filepath.Join(p.dir, CacheFolder) }

// ExportsDir returns the project's exports folder.
func (p *Project) ExportsDir() string { return filepath.Join(p.dir, ExportsFolder) }

// runIDs remembers the run ids NewRunID handed out in this process.
var runIDs = struct {
	sync.Mutex
	issued map[string]bool
}{issued: map[string]bool{}}

// NewRunID returns a new run id from the current time
// ("20060102-150405-000", UTC, milliseconds), with a "-2", "-3", ... suffix
// when needed to be unique among p.Runs, the folders in runs/ and the ids
// this process has already handed out.
func (p *Project) NewRunID() string {
	base := time.Now().UTC().Format("20060102-150405.000")
	base = strings.Replace(base, ".", "-", 1)
	runIDs.Lock()
	defer runIDs.Unlock()
	for n := 1; ; n++ {
		id := base
		if n > 1 {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		if runIDs.issued[id] || p.hasRun(id) {
			continue
		}
		if _, err := os.Lstat(p.RunDir(id)); err == nil {
			continue
		}
		runIDs.issued[id] = true
		return id
	}
}

// RenameRun gives run id a name (empty: back to its id) and saves the
// project.
func (p *Project) RenameRun(id, name string) error {
	for i := range p.Runs {
		if p.Runs[i].ID == id {
			p.Runs[i].Name = strings.TrimSpace(name)
			return p.Save()
		}
	}
	return fmt.Errorf("the project has no run %s", id)
}

// DeleteRun removes run id from the project and deletes its folder.
func (p *Project) DeleteRun(id string) error {
	i := slices.IndexFunc(p.Runs, func(r RunRef) bool { return r.ID == id })
	if i < 0 || id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return fmt.Errorf("the project has no run %q", id)
	}
	p.Runs = slices.Delete(p.Runs, i, i+1)
	if err := p.Save(); err != nil {
		return err
	}
	if err := os.RemoveAll(p.RunDir(id)); err != nil {
		return fmt.Errorf("delete run %s: %w", id, err)
	}
	return nil
}

func (p *Project) hasRun(id string) bool {
	for _, r := range p.Runs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// ResolvePath turns a path stored in project.json into one to use: an
// absolute path is returned cleaned, a relative (slash-separated) one is
// taken from the project folder. MNISTSource and "" are returned as they
// are.
func (p *Project) ResolvePath(rel string) string {
	if rel == "" || rel == MNISTSource {
		return rel
	}
	native := filepath.FromSlash(rel)
	if filepath.IsAbs(native) {
		return filepath.Clean(native)
	}
	return filepath.Join(p.dir, native)
}

// RelPath turns a path into the form stored in project.json: relative to
// the project folder and slash-separated when it lies inside it, otherwise
// absolute. MNISTSource and "" are returned as they are; a file inside the
// project that is literally named "mnist" is stored as "./mnist".
func (p *Project) RelPath(path string) string {
	if path == "" || path == MNISTSource {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(p.dir, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return abs
	}
	rel = filepath.ToSlash(rel)
	if rel == MNISTSource {
		rel = "./" + rel
	}
	return rel
}

// SetDataset points the project at a data set path (stored with RelPath)
// shaped by pre.
func (p *Project) SetDataset(path string, pre Preprocess) {
	p.Dataset = DatasetRef{Source: p.RelPath(path), Preprocess: pre}
}

// DataSource returns the project's data set source to pass to LoadSource:
// the resolved path, or MNISTSource.
func (p *Project) DataSource() string { return p.ResolvePath(p.Dataset.Source) }

// LoadDataset loads the project's data set with LoadSource through the
// project's cache (see CacheLoad), reporting whether it came from the
// cache. An error wrapping ErrCacheWrite comes with a usable data set.
func (p *Project) LoadDataset(ctx context.Context, progress func(done, total int)) (*Dataset, bool, error) {
	src := p.DataSource()
	if src == "" {
		return nil, false, fmt.Errorf("project %s has no data set", p.Name)
	}
	pre := p.Dataset.Preprocess
	if pre.Channels == 0 {
		pre.Channels = 1
	}
	return CacheLoad(p.CacheDir(), src, pre, func() (*Dataset, error) {
		return LoadSource(ctx, src, pre, progress)
	})
}

// safeRunID reports whether a run id is a single plain path element.
func safeRunID(id string) bool {
	return id != "" && sanitizeRunID(id) == id
}

// sanitizeRunID replaces what could make a run id leave runs/.
func sanitizeRunID(id string) string {
	if id == "" || id == "." || id == ".." {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < 0x20 {
			return '_'
		}
		return r
	}, id)
}
