package app

import (
	"errors"
	"fmt"
	"path/filepath"

	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/training"
)

// ExportTorchJob is File → Export training job…: the form's model (or the
// trained one, with its weights untouched) and the loaded data set as a
// PyTorch DistributedDataParallel job in dir (training.ExportTorchJob),
// written off the UI goroutine. done, if set, gets the result on the UI
// goroutine.
func (s *Studio) ExportTorchJob(dir string, done func(error)) {
	finish := func(err error) {
		if err != nil {
			s.showError(err)
		}
		if done != nil {
			done(err)
		}
	}
	if s.data == nil {
		finish(errors.New(lang.L("load a data set first")))
		return
	}
	set, err := s.form.read()
	if err != nil {
		finish(err)
		return
	}
	name := "Gen Studio"
	if s.proj != nil {
		name = s.proj.Name
	}
	opts := training.TorchJobOptions{Steps: set.steps, Seed: set.seed, PreviewEvery: set.previewEvery,
		Flip: s.form.flip.Checked, Name: name}
	data := s.data
	prog := dialog.NewCustomWithoutButtons(lang.L("Exporting training job"), widget.NewProgressBarInfinite(), s.win)
	prog.Show()
	go func() {
		m, err := set.build()
		if err == nil {
			err = training.ExportTorchJob(dir, m, data, opts)
			m.Close()
		}
		s.do(func() {
			prog.Hide()
			if err == nil {
				s.status.SetText(fmt.Sprintf(lang.L("Wrote the training job %s"), dir))
				dialog.ShowInformation(lang.L("Training job written"), fmt.Sprintf(lang.L(
					"Run it with PyTorch (see its README.md):\n\ncd %s\ntorchrun --standalone --nproc_per_node 2 train.py --out runs/first\n\nPut the run folder under the project's runs/ to see it in the Runs tab."),
					dir), s.win)
			}
			finish(err)
		})
	}()
}

// exportTorchJobDialog asks for the job's folder.
func (s *Studio) exportTorchJobDialog() {
	pickFolder(s.win, lang.L("Write the PyTorch training job into (an empty or new folder)"), func(dir string) {
		s.ExportTorchJob(filepath.Clean(dir), nil)
	})
}
