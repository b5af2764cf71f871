package app

import (
	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
)

// AppID is Gen Studio's application ID (as in FyneApp.toml).
const AppID = "io.genstudio.app"

// Run opens the studio window with MNIST loaded and blocks until it closes.
// args may hold "--selftest DIR" (see selftest.go).
func Run(args []string) error {
	a := fyneapp.NewWithID(AppID)
	win := a.NewWindow("Gen Studio")
	win.Resize(fyne.NewSize(1280, 820))
	s := NewStudio(a, win)
	win.SetCloseIntercept(func() {
		s.status.SetText("Stopping …")
		go func() {
			s.Close()
			fyne.Do(win.Close)
		}()
	})
	s.LoadDataset("mnist")
	if dir, ok := selftestDir(args); ok {
		go s.selftest(dir)
	}
	win.ShowAndRun()
	return nil
}
