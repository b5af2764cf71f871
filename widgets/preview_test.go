package widgets

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
)

// previewDirEnv names the environment variable that turns on TestPreview.
const previewDirEnv = "WIDGETS_PREVIEW_DIR"

// TestPreview renders the Evaluate tab's widgets in the test, dark and light
// themes to PNG files for a visual check, when WIDGETS_PREVIEW_DIR names a
// folder to write them to:
//
//	WIDGETS_PREVIEW_DIR=/tmp/widgets_preview go test -run TestPreview ./widgets/
func TestPreview(t *testing.T) {
	dir := os.Getenv(previewDirEnv)
	if dir == "" {
		t.Skip("set " + previewDirEnv + " to write preview PNGs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	themes := []struct {
		name string
		th   fyne.Theme
	}{
		{"test", test.Theme()},
		{"dark", theme.DarkTheme()},
		{"light", theme.LightTheme()},
	}
	scenes := []struct {
		name    string
		size    fyne.Size
		content func() fyne.CanvasObject
	}{
		{"metriccards", fyne.NewSize(900, 150), func() fyne.CanvasObject {
			return container.NewGridWithColumns(3, sampleCards()...)
		}},
		{"metriccard_narrow", fyne.NewSize(200, 220), func() fyne.CanvasObject {
			return container.NewVBox(sampleCards()[0])
		}},
		{"barchart", fyne.NewSize(420, 240), func() fyne.CanvasObject {
			return sampleBarChart()
		}},
		{"barchart_min", fyne.NewSize(268, 168), func() fyne.CanvasObject {
			return sampleBarChart()
		}},
		{"barchart_names", fyne.NewSize(300, 200), func() fyne.CanvasObject {
			b := NewBarChart()
			b.SetData([]string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
				[]string{"samples"}, [][]float64{{0.02, 0.31, 0.08, 0.12, 0.05, 0.0004, 0.1, 0.2, 0.07, 0.0496}})
			return b
		}},
		{"barchart_empty", fyne.NewSize(268, 168), func() fyne.CanvasObject {
			return NewBarChart()
		}},
	}
	for _, th := range themes {
		for _, sc := range scenes {
			t.Run(th.name+"_"+sc.name, func(t *testing.T) {
				a := test.NewTempApp(t)
				a.Settings().SetTheme(th.th)
				w := test.NewTempWindow(t, sc.content())
				w.Resize(sc.size)
				img := w.Canvas().Capture()
				f, err := os.Create(filepath.Join(dir, th.name+"_"+sc.name+".png"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := png.Encode(f, img); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
