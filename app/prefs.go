package app

import (
	"embed"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/project"
)

// Preference keys (Fyne's preferences, kept per application ID).
const (
	prefTheme    = "theme"    // "system", "light" or "dark"
	prefLanguage = "language" // "system", "en" or "zh-Hans"
	prefSteps    = "default_steps"
	prefPreview  = "default_preview_every"
	prefRunsDir  = "runs_dir"
	prefLastDir  = "last_folder"
	prefWinW     = "window_width"
	prefWinH     = "window_height"
	prefWelcomed = "welcome_shown"
)

//go:embed translations
var translations embed.FS

// Languages the window speaks: their preference value and their name as
// their speakers write it.
var languages = []struct{ code, name string }{
	{"system", "System language"},
	{"en", "English"},
	{"zh-Hans", "简体中文"},
}

var setupLanguageOnce sync.Once

// setupLanguage loads the window's translations, in the language of the
// preference code ("system" or "" follows the system locale). Fyne picks
// the translation from the locale once the catalogues are added; a chosen
// language is put in LANGUAGE first, which the locale lookup reads on
// Linux and the BSDs. It runs once per process: a change in preferences
// applies at the next start.
func setupLanguage(code string) {
	setupLanguageOnce.Do(func() {
		if code != "" && code != "system" {
			forceLanguage(code)
		}
		if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
			fyne.LogError("loading Gen Studio's translations", err)
		}
	})
}

// forceLanguage makes the locale lookup see code: LANGUAGE wins over LANG
// unless the deciding locale variable is the bare C or POSIX locale, which
// then becomes C.UTF-8 (the same locale for the C library).
func forceLanguage(code string) {
	os.Setenv("LANGUAGE", strings.ReplaceAll(code, "-", "_"))
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		if v == "C" || v == "POSIX" {
			os.Setenv(name, "C.UTF-8")
		}
		return
	}
}

// tr translates a message that comes from data (a field's label, a
// preset's note); the empty string stays empty.
func tr(s string) string {
	if s == "" {
		return ""
	}
	return lang.L(s)
}

// uiLanguage is the language the window shows ("en" or "zh-Hans").
func uiLanguage() string {
	if lang.L("Train") == "训练" {
		return "zh-Hans"
	}
	return "en"
}

// studioTheme is Fyne's theme with the theme preference applied (a fixed
// light or dark variant) and, for Chinese, a system font with CJK glyphs.
type studioTheme struct {
	variant    string        // "system", "light" or "dark"
	text, bold fyne.Resource // nil: Fyne's bundled font
}

var _ fyne.Theme = (*studioTheme)(nil)

func (t *studioTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	switch t.variant {
	case "light":
		v = theme.VariantLight
	case "dark":
		v = theme.VariantDark
	}
	return theme.DefaultTheme().Color(n, v)
}

func (t *studioTheme) Font(s fyne.TextStyle) fyne.Resource {
	if t.text != nil && !s.Monospace && !s.Symbol {
		if s.Bold && t.bold != nil {
			return t.bold
		}
		return t.text
	}
	return theme.DefaultTheme().Font(s)
}

func (t *studioTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return theme.DefaultTheme().Icon(n) }

func (t *studioTheme) Size(n fyne.ThemeSizeName) float32 { return theme.DefaultTheme().Size(n) }

// newStudioTheme builds the theme for a variant preference and the window's
// language. Without a CJK font a Chinese window still works: Fyne then
// looks each missing glyph up among the system fonts itself.
func newStudioTheme(variant string) *studioTheme {
	t := &studioTheme{variant: variant}
	if uiLanguage() == "zh-Hans" {
		t.text = findCJKFont(false)
		if t.text != nil {
			t.bold = findCJKFont(true)
		}
	}
	return t
}

// applyTheme sets the app's theme from the preferences.
func applyTheme(a fyne.App) {
	a.Settings().SetTheme(newStudioTheme(a.Preferences().StringWithFallback(prefTheme, "system")))
}

// startLanguage reads the language preference of the app ID and loads the
// translations; call it before any window text is built.
func startLanguage(a fyne.App) {
	setupLanguage(a.Preferences().StringWithFallback(prefLanguage, "system"))
}

// lastFolder is where file dialogs start: the folder of the last file or
// folder chosen, if it still exists.
func lastFolder() string {
	a := fyne.CurrentApp()
	if a == nil {
		return ""
	}
	d := a.Preferences().String(prefLastDir)
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		return ""
	}
	return d
}

// rememberFolder records the folder of a chosen path for the next dialog.
func rememberFolder(p string) {
	a := fyne.CurrentApp()
	if a == nil || p == "" {
		return
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		p = filepath.Dir(p)
	}
	a.Preferences().SetString(prefLastDir, p)
}

// windowSize is the window size saved at the last close (or the default).
func windowSize(a fyne.App) fyne.Size {
	w := a.Preferences().FloatWithFallback(prefWinW, 1280)
	h := a.Preferences().FloatWithFallback(prefWinH, 820)
	if w < 640 || h < 480 || w > 10000 || h > 10000 {
		w, h = 1280, 820
	}
	return fyne.NewSize(float32(w), float32(h))
}

func saveWindowSize(a fyne.App, s fyne.Size) {
	a.Preferences().SetFloat(prefWinW, float64(s.Width))
	a.Preferences().SetFloat(prefWinH, float64(s.Height))
}

// applyRunDefaults fills the form's steps and preview interval from the
// preferences (the form's own defaults where none are set).
func (s *Studio) applyRunDefaults() {
	p := s.app.Preferences()
	if n := p.Int(prefSteps); n > 0 {
		s.form.steps.entry.SetText(strconv.Itoa(n))
	}
	if n := p.Int(prefPreview); n > 0 {
		s.form.preview.entry.SetText(strconv.Itoa(n))
	}
	if d := p.String(prefRunsDir); d != "" {
		s.runsDir = d
	}
}

// showPreferences is Edit → Preferences: theme, language, default steps and
// preview interval, and where runs without a project go.
func (s *Studio) showPreferences() {
	p := s.app.Preferences()
	themes := []string{lang.L("System"), lang.L("Light"), lang.L("Dark")}
	themeCodes := []string{"system", "light", "dark"}
	themeSel := widget.NewSelect(themes, nil)
	themeSel.SetSelectedIndex(max(0, indexOf(themeCodes, p.StringWithFallback(prefTheme, "system"))))

	var langNames, langCodes []string
	for _, l := range languages {
		langNames = append(langNames, tr(l.name))
		langCodes = append(langCodes, l.code)
	}
	langSel := widget.NewSelect(langNames, nil)
	langSel.SetSelectedIndex(max(0, indexOf(langCodes, p.StringWithFallback(prefLanguage, "system"))))

	steps := widget.NewEntry()
	steps.SetText(s.form.steps.entry.Text)
	if n := p.Int(prefSteps); n > 0 {
		steps.SetText(strconv.Itoa(n))
	}
	steps.Validator = positiveInt
	preview := widget.NewEntry()
	preview.SetText(s.form.preview.entry.Text)
	if n := p.Int(prefPreview); n > 0 {
		preview.SetText(strconv.Itoa(n))
	}
	preview.Validator = positiveInt
	runs := widget.NewEntry()
	runs.SetText(s.runsFolder())
	browse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		pickFolder(s.win, lang.L("Where runs without a project go"), func(d string) { runs.SetText(d) })
	})
	items := []*widget.FormItem{
		{Text: lang.L("Theme"), Widget: themeSel},
		{Text: lang.L("Language"), Widget: langSel, HintText: lang.L("applies at the next start")},
		{Text: lang.L("Default steps"), Widget: steps},
		{Text: lang.L("Default preview every"), Widget: preview, HintText: lang.L("steps")},
		{Text: lang.L("Runs folder"), Widget: container.NewBorder(nil, nil, nil, browse, runs),
			HintText: lang.L("for runs without a project")},
	}
	d := dialog.NewForm(lang.L("Preferences"), lang.L("Save"), lang.L("Cancel"), items, func(ok bool) {
		if !ok {
			return
		}
		s.savePreferences(themeCodes[max(0, themeSel.SelectedIndex())], langCodes[max(0, langSel.SelectedIndex())],
			steps.Text, preview.Text, runs.Text)
	}, s.win)
	d.Resize(fyne.NewSize(620, 420))
	d.Show()
}

// savePreferences stores the preferences dialog's values and applies what
// applies at once (theme, form defaults, runs folder).
func (s *Studio) savePreferences(themeCode, langCode, steps, preview, runsDir string) {
	p := s.app.Preferences()
	p.SetString(prefTheme, themeCode)
	p.SetString(prefLanguage, langCode)
	if n, err := strconv.Atoi(strings.TrimSpace(steps)); err == nil && n > 0 {
		p.SetInt(prefSteps, n)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(preview)); err == nil && n > 0 {
		p.SetInt(prefPreview, n)
	}
	if d := strings.TrimSpace(runsDir); d != "" {
		p.SetString(prefRunsDir, d)
	}
	applyTheme(s.app)
	s.applyRunDefaults()
}

func positiveInt(t string) error {
	if n, err := strconv.Atoi(strings.TrimSpace(t)); err != nil || n < 1 {
		return errNotPositive
	}
	return nil
}

var errNotPositive = errorString("a whole number of at least 1")

type errorString string

func (e errorString) Error() string { return lang.L(string(e)) }

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// welcomeText is the first-start welcome: what the studio does, in three lines.
func welcomeText() string {
	return lang.X("welcome.text", "Gen Studio trains generative models (GANs, VAEs and diffusion models) on a folder of images.\n"+
		"It shows samples and losses live, and measures how good and how varied the samples are.\n"+
		"Then explore the model, rate its samples and export galleries and checkpoints.")
}

// showWelcome shows the welcome (first start, and Help → Welcome).
func (s *Studio) showWelcome() {
	msg := widget.NewLabel(welcomeText())
	msg.Wrapping = fyne.TextWrapWord
	var d dialog.Dialog
	trainBtn := widget.NewButtonWithIcon(lang.L("Train on MNIST"), theme.MediaPlayIcon(), func() {
		d.Hide()
		s.trainOnMNIST()
	})
	trainBtn.Importance = widget.HighImportance
	content := container.NewVBox(msg, container.NewCenter(trainBtn))
	d = dialog.NewCustom(lang.L("Welcome to Gen Studio"), lang.L("Close"), content, s.win)
	d.Resize(fyne.NewSize(620, 260))
	d.Show()
	s.app.Preferences().SetBool(prefWelcomed, true)
}

// trainOnMNIST loads the built-in digits (when another data set is loaded)
// and starts training the form's model on them.
func (s *Studio) trainOnMNIST() {
	if s.data != nil && s.data.Source == project.MNISTSource {
		s.Train()
		return
	}
	s.afterLoad = s.Train
	s.LoadDataset("mnist")
}
