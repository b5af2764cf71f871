package app

import (
	"bytes"
	"slices"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/go-text/typesetting/font"
)

// windowTexts collects the texts of the window: its menus and the labels,
// buttons, checks, cards, tabs (every tab, shown or not), form items,
// selects and placeholders under its content.
func windowTexts(win fyne.Window) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	if m := win.MainMenu(); m != nil {
		for _, menu := range m.Items {
			addMenu(menu, add)
		}
	}
	walkTexts(win.Content(), add)
	return out
}

func addMenu(m *fyne.Menu, add func(string)) {
	add(m.Label)
	for _, it := range m.Items {
		add(it.Label)
		if it.ChildMenu != nil {
			addMenu(it.ChildMenu, add)
		}
	}
}

func walkTexts(o fyne.CanvasObject, add func(string)) {
	switch w := o.(type) {
	case nil:
	case *widget.Label:
		add(w.Text)
	case *widget.Button:
		add(w.Text)
	case *widget.Check:
		add(w.Text)
	case *widget.Entry:
		add(w.PlaceHolder)
	case *widget.Select:
		add(w.PlaceHolder)
		for _, o := range w.Options {
			add(o)
		}
	case *widget.Card:
		add(w.Title)
		add(w.Subtitle)
		walkTexts(w.Content, add)
	case *widget.Form:
		for _, it := range w.Items {
			add(it.Text)
			add(it.HintText)
			walkTexts(it.Widget, add)
		}
	case *widget.RichText:
		add(w.String())
	case *container.AppTabs:
		for _, it := range w.Items {
			add(it.Text)
			walkTexts(it.Content, add)
		}
	case *container.Split:
		walkTexts(w.Leading, add)
		walkTexts(w.Trailing, add)
	case *container.Scroll:
		walkTexts(w.Content, add)
	case *fyne.Container:
		for _, x := range w.Objects {
			walkTexts(x, add)
		}
	}
}

// missingGlyphs lists the characters of texts that the theme's text font
// (regular and bold) lacks; Fyne would draw them from another system font
// or as boxes.
func missingGlyphs(th fyne.Theme, texts []string) []string {
	var faces []*font.Face
	for _, st := range []fyne.TextStyle{{}, {Bold: true}} {
		if f, err := font.ParseTTF(bytes.NewReader(th.Font(st).Content())); err == nil {
			faces = append(faces, f)
		}
	}
	seen := map[rune]bool{}
	var out []string
	for _, t := range texts {
		for _, r := range t {
			if seen[r] || unicode.IsSpace(r) || unicode.IsControl(r) {
				continue
			}
			seen[r] = true
			for _, f := range faces {
				if _, ok := f.NominalGlyph(r); !ok {
					out = append(out, string(r))
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
