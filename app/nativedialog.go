package app

import (
	"errors"
	"os"
	"runtime"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	native "github.com/sqweek/dialog"
)

// nativeDialogs reports whether native file dialogs may be tried: they need
// a display on Linux and can be turned off with GENSTUDIO_NATIVE_DIALOGS=0.
func nativeDialogs() bool {
	if os.Getenv("GENSTUDIO_NATIVE_DIALOGS") == "0" {
		return false
	}
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return false
	}
	return true
}

// tryNative runs a sqweek/dialog call off the UI goroutine and recovers from
// its panics (it panics where GTK cannot open). It reports ok=false when
// the native dialog could not be shown at all, so the caller falls back to
// Fyne's dialog; a user's cancel is ok=true with path "".
func tryNative(call func() (string, error)) (path string, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			path, ok = "", false
		}
	}()
	p, err := call()
	if errors.Is(err, native.ErrCancelled) {
		return "", true
	}
	if err != nil {
		return "", false
	}
	return p, true
}

// pick shows a native dialog (call) off the UI goroutine, or Fyne's
// (fallback) where no native one can open. done runs on the UI goroutine
// with the chosen path; it is not called when the user cancels.
func pick(call func() (string, error), fallback func(done func(string)), chosen func(string)) {
	done := func(p string) {
		rememberFolder(p)
		chosen(p)
	}
	if !nativeDialogs() {
		fallback(done)
		return
	}
	go func() {
		p, ok := tryNative(call)
		fyne.Do(func() {
			switch {
			case !ok:
				fallback(done)
			case p != "":
				done(p)
			}
		})
	}()
}

// pickFolder asks for a folder.
func pickFolder(win fyne.Window, title string, done func(string)) {
	pick(func() (string, error) { return native.Directory().Title(title).SetStartDir(lastFolder()).Browse() },
		func(done func(string)) { fyneFolder(win, done) }, done)
}

func fyneFolder(win fyne.Window, done func(string)) {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			dialog.ShowError(err, win)
			return
		}
		if u != nil {
			done(u.Path())
		}
	}, win)
	startIn(d)
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

// pickOpenFile asks for an existing file with one of exts (like ".safetensors").
func pickOpenFile(win fyne.Window, title, filterName string, exts []string, done func(string)) {
	pick(func() (string, error) {
		return native.File().Title(title).Filter(filterName, trimDots(exts)...).SetStartDir(lastFolder()).Load()
	},
		func(done func(string)) { fyneOpenFile(win, exts, done) }, done)
}

func fyneOpenFile(win fyne.Window, exts []string, done func(string)) {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			dialog.ShowError(err, win)
			return
		}
		if r != nil {
			r.Close()
			done(r.URI().Path())
		}
	}, win)
	d.SetFilter(storage.NewExtensionFileFilter(exts))
	startIn(d)
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

// pickSaveFile asks where to save a file, suggesting name.
func pickSaveFile(win fyne.Window, title, name, filterName string, exts []string, done func(string)) {
	pick(func() (string, error) {
		return native.File().Title(title).Filter(filterName, trimDots(exts)...).SetStartDir(lastFolder()).SetStartFile(name).Save()
	}, func(done func(string)) { fyneSaveFile(win, name, done) }, done)
}

func fyneSaveFile(win fyne.Window, name string, done func(string)) {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil {
			dialog.ShowError(err, win)
			return
		}
		if w != nil {
			// The caller writes the file atomically itself; drop Fyne's empty file.
			w.Close()
			p := w.URI().Path()
			if st, err := os.Stat(p); err == nil && st.Size() == 0 {
				os.Remove(p)
			}
			done(p)
		}
	}, win)
	d.SetFileName(name)
	startIn(d)
	d.Resize(fyne.NewSize(800, 560))
	d.Show()
}

func trimDots(exts []string) []string {
	out := make([]string, len(exts))
	for i, e := range exts {
		if len(e) > 0 && e[0] == '.' {
			e = e[1:]
		}
		out[i] = e
	}
	return out
}

// startIn opens a Fyne file dialog in the last folder chosen.
func startIn(d *dialog.FileDialog) {
	if dir := lastFolder(); dir != "" {
		if l, err := storage.ListerForURI(storage.NewFileURI(dir)); err == nil {
			d.SetLocation(l)
		}
	}
}
