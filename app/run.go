package app

import (
	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/lang"
	_ "github.com/genstudio/genstudio/internal/posixlocale" // before Fyne reads the locale
)

// AppID is Gen Studio's application ID (as in FyneApp.toml).
const AppID = "io.genstudio.app"

// Run opens the studio window and blocks until it closes. args may name a
// project folder to open (otherwise MNIST is loaded) and may hold
// "--selftest DIR" (see selftest.go).
func Run(args []string) error {
	a := fyneapp.NewWithID(AppID)
	startLanguage(a)
	applyTheme(a)
	win := a.NewWindow(lang.L("Gen Studio"))
	win.Resize(windowSize(a))
	s := NewStudio(a, win)
	s.buildMenu()
	win.SetCloseIntercept(func() {
		s.confirmClose(func() {
			saveWindowSize(a, win.Canvas().Size())
			s.status.SetText(lang.L("Stopping …"))
			go func() {
				s.Close()
				fyne.Do(win.Close)
			}()
		})
	})
	if dir := projectArg(args); dir != "" {
		s.OpenProject(dir)
	} else {
		s.LoadDataset("mnist")
	}
	if dir, ok := selftestDir(args); ok {
		go s.selftest(dir)
	} else if !a.Preferences().Bool(prefWelcomed) {
		s.showWelcome()
	}
	win.ShowAndRun()
	return nil
}
