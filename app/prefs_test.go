package app

import (
	"bytes"
	"encoding/binary"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/go-text/typesetting/font"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

func TestPreferencesAreRememberedAndApplied(t *testing.T) {
	s := newTestStudio(t)
	runs := filepath.Join(t.TempDir(), "my runs")
	ui(func() { s.savePreferences("dark", "zh-Hans", "1234", "25", runs) })

	p := s.app.Preferences()
	if p.String(prefTheme) != "dark" || p.String(prefLanguage) != "zh-Hans" || p.Int(prefSteps) != 1234 || p.Int(prefPreview) != 25 {
		t.Fatalf("stored: theme %q language %q steps %d preview %d", p.String(prefTheme), p.String(prefLanguage),
			p.Int(prefSteps), p.Int(prefPreview))
	}
	th, ok := s.app.Settings().Theme().(*studioTheme)
	if !ok {
		t.Fatalf("theme %T, not the studio's", s.app.Settings().Theme())
	}
	dark := theme.DefaultTheme().Color(theme.ColorNameBackground, theme.VariantDark)
	if got := th.Color(theme.ColorNameBackground, theme.VariantLight); !sameColor(got, dark) {
		t.Errorf("dark theme background %v, want %v", got, dark)
	}
	if s.form.steps.entry.Text != "1234" || s.form.preview.entry.Text != "25" || s.runsFolder() != runs {
		t.Errorf("form steps %q preview %q, runs %q", s.form.steps.entry.Text, s.form.preview.entry.Text, s.runsFolder())
	}
	// A second window of the same app (the next launch) starts from them.
	s2 := NewStudio(s.app, test.NewTempWindow(t, nil))
	t.Cleanup(s2.Close)
	if s2.form.steps.entry.Text != "1234" || s2.form.preview.entry.Text != "25" || s2.runsFolder() != runs {
		t.Errorf("new window: steps %q preview %q runs %q", s2.form.steps.entry.Text, s2.form.preview.entry.Text, s2.runsFolder())
	}
	// Bad numbers keep the stored ones.
	ui(func() { s.savePreferences("light", "en", "-3", "x", "") })
	if p.Int(prefSteps) != 1234 || p.Int(prefPreview) != 25 || p.String(prefRunsDir) != runs {
		t.Errorf("bad input changed the defaults: %d %d %q", p.Int(prefSteps), p.Int(prefPreview), p.String(prefRunsDir))
	}
	if positiveInt("0") == nil || positiveInt("12") != nil {
		t.Error("positiveInt")
	}

	// Window size and last folder.
	saveWindowSize(s.app, fyne.NewSize(1500, 950))
	if got := windowSize(s.app); got != fyne.NewSize(1500, 950) {
		t.Errorf("window size %v", got)
	}
	saveWindowSize(s.app, fyne.NewSize(10, 10))
	if got := windowSize(s.app); got != fyne.NewSize(1280, 820) {
		t.Errorf("a tiny saved size gives %v, want the default", got)
	}
	dir := t.TempDir()
	rememberFolder(filepath.Join(dir, "model.safetensors"))
	if lastFolder() != dir {
		t.Errorf("last folder %q, want %q", lastFolder(), dir)
	}
	rememberFolder(filepath.Join(dir, "gone", "x.png"))
	if lastFolder() != "" {
		t.Errorf("a folder that does not exist is offered: %q", lastFolder())
	}

	// The dialog opens on the stored values.
	ui(s.showPreferences)
	if !hasOverlay(s) {
		t.Error("Preferences shows no dialog")
	}
}

func sameColor(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

func hasOverlay(s *Studio) bool {
	var n int
	ui(func() { n = len(s.win.Canvas().Overlays().List()) })
	return n > 0
}

func TestWelcomeTrainsOnMNIST(t *testing.T) {
	s := newTestStudio(t)
	if s.app.Preferences().Bool(prefWelcomed) {
		t.Fatal("a fresh app has shown the welcome")
	}
	loadSmallMNIST(t, s)
	ui(func() { smallForm(s, "100000") })
	ui(s.showWelcome)
	if !s.app.Preferences().Bool(prefWelcomed) {
		t.Error("the welcome is not remembered as shown")
	}
	var btn *widget.Button
	ui(func() {
		for _, o := range s.win.Canvas().Overlays().List() {
			if b := findButton(t, o, "Train on MNIST"); b != nil {
				btn = b
			}
		}
	})
	if btn == nil {
		t.Fatal("no Train on MNIST button in the welcome")
	}
	tap(btn)
	waitFor(t, "training from the welcome", func() bool { return s.worker != nil && s.step >= 1 })
	if hasOverlay(s) {
		t.Error("the welcome stays open after Train on MNIST")
	}
	ui(s.Stop)
	waitFor(t, "the stop", func() bool { return s.worker == nil })
	if s.data.Source != project.MNISTSource {
		t.Errorf("trained on %q", s.data.Source)
	}
	_ = training.Paused
}

func findButton(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	if b, ok := o.(*widget.Button); ok && b.Text == text {
		return b
	}
	if c, ok := o.(*fyne.Container); ok {
		for _, x := range c.Objects {
			if b := findButton(t, x, text); b != nil {
				return b
			}
		}
	}
	if w, ok := o.(fyne.Widget); ok {
		r := test.TempWidgetRenderer(t, w)
		for _, x := range r.Objects() {
			if b := findButton(t, x, text); b != nil {
				return b
			}
		}
	}
	return nil
}

// TestTTCFaceIsAStandaloneFont wraps Fyne's bundled font in a two-face
// collection and checks that the face copied out parses and keeps its glyphs.
func TestTTCFaceIsAStandaloneFont(t *testing.T) {
	ttf := theme.DefaultTextFont().Content()
	ttc := makeTTC(t, ttf)
	for i := 0; i < 2; i++ {
		out, err := ttcFace(ttc, i)
		if err != nil {
			t.Fatal(err)
		}
		face, err := font.ParseTTF(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("face %d does not parse: %v", i, err)
		}
		if _, ok := face.NominalGlyph('G'); !ok {
			t.Errorf("face %d lost its glyphs", i)
		}
	}
	if _, err := ttcFace(ttc, 2); err == nil {
		t.Error("face 2 of a two-face collection was found")
	}
	if _, err := ttcFace(ttc[:40], 0); err == nil {
		t.Error("a truncated collection gave a face")
	}
}

// makeTTC builds a collection of two copies of one font file.
func makeTTC(t *testing.T, ttf []byte) []byte {
	be := binary.BigEndian
	n := int(be.Uint16(ttf[4:]))
	head := 12 + 8 // ttcf header with two offsets
	var b bytes.Buffer
	b.WriteString("ttcf")
	binary.Write(&b, be, uint32(0x00010000))
	binary.Write(&b, be, uint32(2))
	binary.Write(&b, be, uint32(head))
	binary.Write(&b, be, uint32(head+len(ttf)))
	for i := 0; i < 2; i++ {
		base := b.Len()
		face := append([]byte(nil), ttf...)
		for k := 0; k < n; k++ { // table offsets become file offsets
			rec := face[12+16*k:]
			be.PutUint32(rec[8:], be.Uint32(rec[8:])+uint32(base))
		}
		b.Write(face)
	}
	return b.Bytes()
}

func TestCJKFontWhenInstalled(t *testing.T) {
	r := findCJKFont(false)
	if r == nil {
		t.Skip("no CJK font on this system (Debian: fonts-noto-cjk)")
	}
	face, err := font.ParseTTF(bytes.NewReader(r.Content()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range "训练评估比较" {
		if _, ok := face.NominalGlyph(c); !ok {
			t.Errorf("%s lacks %q", r.Name(), c)
		}
	}
}

// TestForceLanguage: a chosen language reaches the locale lookup even under
// the bare C locale, and a normal locale is left alone.
func TestForceLanguage(t *testing.T) {
	for _, c := range []struct{ lcAll, lang, wantLang string }{
		{"", "C", "C.UTF-8"},
		{"", "en_GB.UTF-8", "en_GB.UTF-8"},
		{"POSIX", "de_DE.UTF-8", "de_DE.UTF-8"},
	} {
		t.Setenv("LC_ALL", c.lcAll)
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", c.lang)
		t.Setenv("LANGUAGE", "")
		forceLanguage("zh-Hans")
		if got := os.Getenv("LANGUAGE"); got != "zh_Hans" {
			t.Errorf("LANGUAGE %q", got)
		}
		if c.lcAll != "" {
			if got := os.Getenv("LC_ALL"); got != "C.UTF-8" {
				t.Errorf("LC_ALL=%s became %q", c.lcAll, got)
			}
		} else if got := os.Getenv("LANG"); got != c.wantLang {
			t.Errorf("LANG=%s became %q", c.lang, got)
		}
	}
}
