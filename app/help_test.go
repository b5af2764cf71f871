package app

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/genstudio/genstudio/training"
)

// TestMenusAndShortcuts: File, Run, View and Help menus; Ctrl+2 shows
// Evaluate; Space pauses and resumes training on the Train tab; About
// names the version.
func TestMenusAndShortcuts(t *testing.T) {
	s := newTestStudio(t)
	ui(s.buildMenu)
	var titles []string
	for _, m := range s.win.MainMenu().Items {
		titles = append(titles, m.Label)
	}
	if strings.Join(titles, ",") != "File,Edit,Run,View,Help" {
		t.Fatalf("menus %v", titles)
	}
	shortcuts := map[string]bool{}
	for _, m := range s.win.MainMenu().Items {
		for _, it := range m.Items {
			if it.Shortcut != nil {
				shortcuts[it.Label] = true
			}
		}
	}
	for _, want := range []string{"Preferences…", "New project…", "Open project…", "Save project", "Export gallery…", "Train / resume run", "Stop", "Evaluate"} {
		if !shortcuts[want] {
			t.Errorf("%q has no shortcut", want)
		}
	}
	// View → Evaluate (Ctrl+2) shows the Evaluate tab.
	for _, it := range s.win.MainMenu().Items[3].Items {
		if it.Label == "Evaluate" {
			sc, ok := it.Shortcut.(*desktop.CustomShortcut)
			if !ok || sc.KeyName != "2" {
				t.Fatalf("Evaluate's shortcut %#v", it.Shortcut)
			}
			ui(it.Action)
		}
	}
	if s.tabs.Selected().Text != "Evaluate" {
		t.Fatalf("tab %q after View → Evaluate", s.tabs.Selected().Text)
	}
	ui(func() { s.tabs.SelectIndex(0) })
	loadSmallMNIST(t, s)
	ui(func() { smallForm(s, "100000") })
	tap(s.trainBtn)
	waitFor(t, "training", func() bool { return s.worker != nil && s.step >= 2 })
	ui(func() { s.typedKey(&fyne.KeyEvent{Name: fyne.KeySpace}) })
	waitFor(t, "a pause by Space", func() bool { return s.worker != nil && s.worker.State() == training.Paused })
	ui(func() { s.typedKey(&fyne.KeyEvent{Name: fyne.KeySpace}) })
	waitFor(t, "a resume by Space", func() bool { return s.worker != nil && s.worker.State() == training.Running })
	tap(s.stopBtn)
	waitFor(t, "stop", func() bool { return s.worker == nil })
	if !strings.Contains(aboutText(), Version) {
		t.Fatal("About does not name the version")
	}
}
