package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/lang"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

const recentKey = "recentProjects"

// markDirty notes unsaved changes and shows them in the title.
func (s *Studio) markDirty() {
	if s.proj == nil || s.dirty || s.quiet {
		return
	}
	s.dirty = true
	s.updateTitle()
}

func (s *Studio) updateTitle() {
	title := "Gen Studio"
	if s.proj != nil {
		title += " — " + s.proj.Name
		if s.dirty {
			title += " •"
		}
	}
	s.win.SetTitle(title)
}

// buildMenu installs the menus and their keyboard shortcuts: File
// (projects, data set, gallery, checkpoints; Fyne adds Quit), Run, View
// (the tabs) and Help.
func (s *Studio) buildMenu() {
	recent := fyne.NewMenuItem(lang.L("Open recent"), nil)
	var items []*fyne.MenuItem
	for _, dir := range s.recentProjects() {
		items = append(items, fyne.NewMenuItem(dir, func() { s.OpenProject(dir) }))
	}
	if len(items) == 0 {
		items = append(items, &fyne.MenuItem{Label: lang.L("(none yet)"), Disabled: true})
	}
	recent.ChildMenu = fyne.NewMenu("", items...)
	ctrl := func(k fyne.KeyName) fyne.Shortcut {
		return &desktop.CustomShortcut{KeyName: k, Modifier: fyne.KeyModifierShortcutDefault}
	}
	item := func(label string, sc fyne.Shortcut, f func()) *fyne.MenuItem {
		it := fyne.NewMenuItem(label, f)
		if sc != nil {
			it.Shortcut = sc
			s.win.Canvas().AddShortcut(sc, func(fyne.Shortcut) { f() })
		}
		return it
	}
	newProject := func() {
		pickFolder(s.win, lang.L("Create the project in (an empty or new folder)"), func(dir string) { s.NewProject(dir, nil) })
	}
	openProject := func() { pickFolder(s.win, lang.L("Open a project folder"), func(dir string) { s.OpenProject(dir) }) }
	export := func() {
		if s.model != nil {
			pickFolder(s.win, lang.L("Export the gallery into"), func(p string) { s.ExportGallery(p, nil) })
		}
	}
	file := fyne.NewMenu(lang.L("File"),
		item(lang.L("New project…"), ctrl(fyne.KeyN), newProject),
		item(lang.L("Open project…"), ctrl(fyne.KeyO), openProject),
		recent,
		fyne.NewMenuItemSeparator(),
		item(lang.L("Save project"), ctrl(fyne.KeyS), func() { s.SaveProject(nil) }),
		fyne.NewMenuItem(lang.L("Save project as…"), func() {
			pickFolder(s.win, lang.L("Save the project into (an empty or new folder)"), func(dir string) { s.NewProject(dir, nil) })
		}),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(lang.L("Import data set…"), func() { s.openBtn.OnTapped() }),
		item(lang.L("Export gallery…"), ctrl(fyne.KeyE), export),
		fyne.NewMenuItem(lang.L("Export training job (PyTorch)…"), s.exportTorchJobDialog),
		fyne.NewMenuItem(lang.L("Save checkpoint…"), func() {
			if s.model != nil {
				s.saveBtn.OnTapped()
			}
		}),
		fyne.NewMenuItem(lang.L("Load checkpoint…"), func() {
			if s.worker == nil {
				s.loadBtn.OnTapped()
			}
		}),
	)
	run := fyne.NewMenu(lang.L("Run"),
		item(lang.L("Train / resume run"), ctrl(fyne.KeyReturn), s.Train),
		fyne.NewMenuItem(lang.L("Pause or resume (Space)"), s.TogglePause),
		item(lang.L("Stop"), ctrl(fyne.KeyPeriod), s.Stop),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(lang.L("New model"), s.NewModel),
	)
	edit := fyne.NewMenu(lang.L("Edit"), item(lang.L("Preferences…"), ctrl(fyne.KeyComma), s.showPreferences))
	var views []*fyne.MenuItem
	for i, t := range s.tabs.Items {
		views = append(views, item(t.Text, ctrl(fyne.KeyName(fmt.Sprint(i+1))), func() { s.tabs.SelectIndex(i) }))
	}
	help := fyne.NewMenu(lang.L("Help"),
		fyne.NewMenuItem(lang.L("Welcome"), s.showWelcome),
		fyne.NewMenuItem(lang.L("Guide"), s.showGuide),
		fyne.NewMenuItem(lang.L("Keyboard shortcuts"), s.showShortcuts),
		fyne.NewMenuItem(lang.L("Licences"), s.showLicences),
		fyne.NewMenuItem(lang.L("About Gen Studio"), s.showAbout),
	)
	s.win.SetMainMenu(fyne.NewMainMenu(file, edit, run, fyne.NewMenu(lang.L("View"), views...), help))
}

func (s *Studio) recentProjects() []string {
	return s.app.Preferences().StringList(recentKey)
}

func (s *Studio) addRecent(dir string) {
	list := slices.DeleteFunc(s.recentProjects(), func(d string) bool { return d == dir })
	list = append([]string{dir}, list...)
	if len(list) > 8 {
		list = list[:8]
	}
	s.app.Preferences().SetStringList(recentKey, list)
	s.buildMenu()
}

// NewProject creates a project in dir holding the current settings and
// data set reference (Save As when a project is open), then saves it.
func (s *Studio) NewProject(dir string, done func(error)) {
	name := filepath.Base(filepath.Clean(dir))
	p, err := project.Create(dir, name)
	if err != nil {
		s.showError(err)
		if done != nil {
			done(err)
		}
		return
	}
	if s.data != nil {
		p.SetDataset(s.data.Source, s.form.preprocess())
	}
	if s.proj != nil {
		p.Runs = s.proj.Runs // runs stay in the old folder; their records move along
	}
	s.proj = p
	s.SaveProject(done)
}

// SaveProject writes the form's settings into project.json (atomically).
// Without a project it asks where to create one.
func (s *Studio) SaveProject(done func(error)) {
	if s.proj == nil {
		pickFolder(s.win, lang.L("Save the project into (an empty or new folder)"), func(dir string) { s.NewProject(dir, done) })
		return
	}
	err := s.storeSettings()
	if err == nil {
		err = s.proj.Save()
	}
	if err != nil {
		s.showError(fmt.Errorf(lang.L("project not saved: %w"), err))
	} else {
		s.dirty = false
		s.updateTitle()
		s.addRecent(s.proj.Dir())
		s.status.SetText(lang.L("Saved project ") + s.proj.Dir())
	}
	if done != nil {
		done(err)
	}
}

// storeSettings copies the form into the project.
func (s *Studio) storeSettings() error {
	set, err := s.form.read()
	if err != nil {
		return err
	}
	v := variants[s.form.currentIndex()]
	s.proj.Model = project.ModelRef{Family: v.Family, Arch: v.Arch, Config: json.RawMessage(set.config)}
	s.proj.Training = project.TrainingSettings{Steps: set.steps, PreviewEvery: set.previewEvery, EvalEvery: set.evalEvery, Seed: set.seed}
	s.proj.Dataset.Preprocess = s.form.preprocess()
	return nil
}

// OpenProject opens the project in dir: its settings fill the form, its
// data set loads (from the cache when unchanged) and the newest checkpoint
// of its newest run becomes the current model. A failed open changes
// nothing.
func (s *Studio) OpenProject(dir string) {
	if s.worker != nil {
		s.showError(errors.New(lang.L("stop training before opening another project")))
		return
	}
	p, err := project.Open(dir)
	if err != nil {
		s.showError(err)
		return
	}
	s.proj = p
	s.quiet = true
	s.applyProject()
	s.quiet = false
	s.dirty = false
	s.updateTitle()
	s.addRecent(p.Dir())
	s.loadProjectEvals()
	if src := p.DataSource(); src != "" {
		s.LoadDataset(src)
	}
	if ck := s.latestCheckpoint(); ck != "" {
		// Loading the model fills the form with what the project already says.
		s.LoadCheckpoint(ck, func(error) { s.dirty = false; s.updateTitle() })
	}
}

// applyProject fills the form from the project's settings.
func (s *Studio) applyProject() {
	p := s.proj
	if p.Model.Family != "" {
		arch := p.Model.Arch
		if arch == "" {
			arch = models.ArchOf(p.Model.Config)
		}
		if i := variantIndex(p.Model.Family, arch); i >= 0 {
			s.form.family.SetSelected(variants[i].Label)
			var cfg map[string]any
			if json.Unmarshal(p.Model.Config, &cfg) == nil {
				s.form.fill(i, cfg)
			}
		}
	}
	s.form.showPreprocess(p.Dataset.Preprocess)
	t := p.Training
	if t.Steps > 0 {
		s.form.steps.entry.SetText(fmt.Sprint(t.Steps))
	}
	if t.PreviewEvery > 0 {
		s.form.preview.entry.SetText(fmt.Sprint(t.PreviewEvery))
	}
	s.form.seed.entry.SetText(fmt.Sprint(t.Seed))
	s.form.evalEvery.entry.SetText(fmt.Sprint(t.EvalEvery))
}

// latestCheckpoint is the newest checkpoint of the project's newest run.
func (s *Studio) latestCheckpoint() string {
	for i := len(s.proj.Runs) - 1; i >= 0; i-- {
		cks, _ := training.ListCheckpoints(filepath.Join(s.proj.RunDir(s.proj.Runs[i].ID), "checkpoints"))
		if len(cks) > 0 {
			return cks[len(cks)-1]
		}
	}
	return ""
}

// newRunDir is where a new run keeps its files: runs/<id> in the project,
// or ~/GenStudio/runs/<id> without one.
func (s *Studio) newRunDir(family string, steps int) string {
	if s.proj == nil {
		return filepath.Join(s.runsFolder(), time.Now().Format("20060102-150405"))
	}
	id := s.proj.NewRunID()
	s.proj.Runs = append(s.proj.Runs, project.RunRef{ID: id, Created: time.Now().UTC(), Family: family, Steps: steps})
	// The run list is data, not a setting: record it at once.
	if err := s.proj.Save(); err != nil {
		s.showError(fmt.Errorf(lang.L("the run was not recorded in project.json: %w"), err))
	}
	return s.proj.RunDir(id)
}

// confirmClose asks before closing with unsaved changes; then closes.
func (s *Studio) confirmClose(closeNow func()) {
	if s.proj == nil || !s.dirty {
		closeNow()
		return
	}
	msg := widget.NewLabel(fmt.Sprintf(lang.L("Save the changes to %s before closing?"), s.proj.Name))
	dialog.NewCustomConfirm(lang.L("Unsaved changes"), lang.L("Save"), lang.L("Close without saving"), msg, func(save bool) {
		if !save {
			closeNow()
			return
		}
		s.SaveProject(func(err error) {
			if err == nil {
				closeNow()
			}
		})
	}, s.win).Show()
}

// projectArg finds a project folder among the command-line arguments.
func projectArg(args []string) string {
	for i, a := range args {
		if a == "--selftest" {
			continue
		}
		if i > 0 && args[i-1] == "--selftest" {
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			return a
		}
	}
	return ""
}
