package app

import (
	"fmt"
	"fyne.io/fyne/v2/lang"
	"image"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/project"
)

// browserPage is how many thumbnails a page of the browser shows.
const browserPage = 96

// dataBrowser is the data set browser: a paged thumbnail grid, the image
// count, per-class counts and the list of skipped files with reasons.
type dataBrowser struct {
	data   *project.Dataset
	page   int
	thumbs []*canvas.Image
	labels []*widget.Label
	pageLb *widget.Label
	prev   *widget.Button
	next   *widget.Button
	win    fyne.Window
}

// classCounts returns "name: count" lines for the data set's classes.
func classCounts(d *project.Dataset) []string {
	if len(d.Classes) == 0 {
		return nil
	}
	counts := make([]int, len(d.Classes))
	unlabelled := 0
	for _, l := range d.Labels {
		if l >= 0 && l < len(counts) {
			counts[l]++
		} else {
			unlabelled++
		}
	}
	var out []string
	for i, c := range d.Classes {
		out = append(out, fmt.Sprintf("%s: %d", c, counts[i]))
	}
	if unlabelled > 0 {
		out = append(out, fmt.Sprintf("(no class): %d", unlabelled))
	}
	return out
}

func newDataBrowser(d *project.Dataset) *dataBrowser {
	b := &dataBrowser{data: d}
	for i := 0; i < browserPage; i++ {
		img := canvas.NewImageFromImage(image.NewGray(image.Rect(0, 0, 1, 1)))
		img.ScaleMode = canvas.ImageScalePixels
		img.FillMode = canvas.ImageFillContain
		img.SetMinSize(fyne.NewSize(48, 48))
		lb := widget.NewLabel("")
		lb.Alignment = fyne.TextAlignCenter
		lb.TextStyle = fyne.TextStyle{Monospace: true}
		b.thumbs = append(b.thumbs, img)
		b.labels = append(b.labels, lb)
	}
	b.pageLb = widget.NewLabel("")
	b.prev = widget.NewButtonWithIcon("", theme.NavigateBackIcon(), func() { b.show(b.page - 1) })
	b.next = widget.NewButtonWithIcon("", theme.NavigateNextIcon(), func() { b.show(b.page + 1) })
	b.show(0)
	return b
}

func (b *dataBrowser) pages() int { return max(1, (b.data.Len()+browserPage-1)/browserPage) }

// show displays page p (clamped).
func (b *dataBrowser) show(p int) {
	b.page = max(0, min(p, b.pages()-1))
	for k := range b.thumbs {
		i := b.page*browserPage + k
		if th := b.data.Thumbnail(i); th != nil {
			b.thumbs[k].Image = th
			label := fmt.Sprint(i + 1)
			if i < len(b.data.Labels) && b.data.Labels[i] >= 0 && b.data.Labels[i] < len(b.data.Classes) {
				label = b.data.Classes[b.data.Labels[i]]
			}
			b.labels[k].SetText(truncate(label, 8))
			b.thumbs[k].Show()
		} else {
			b.thumbs[k].Hide()
			b.labels[k].SetText("")
		}
		b.thumbs[k].Refresh()
	}
	b.pageLb.SetText(fmt.Sprintf(lang.L("Page %d of %d"), b.page+1, b.pages()))
	if b.page == 0 {
		b.prev.Disable()
	} else {
		b.prev.Enable()
	}
	if b.page >= b.pages()-1 {
		b.next.Disable()
	} else {
		b.next.Enable()
	}
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// content lays the browser out: summary and classes on the left, skipped
// files below them, the paged grid on the right.
func (b *dataBrowser) content() fyne.CanvasObject {
	d := b.data
	summary := widget.NewLabel(fmt.Sprintf(lang.L("%s\n%d images, %s\nsource: %s"), d.Name, d.Len(), imageText(d.Width, d.C()), d.Source))
	summary.Wrapping = fyne.TextWrapWord
	classes := widget.NewLabel(strings.Join(classCounts(d), "\n"))
	if len(d.Classes) == 0 {
		classes.SetText(lang.L("no classes"))
	}
	skipped := widget.NewList(func() int { return len(d.Skipped) },
		func() fyne.CanvasObject { l := widget.NewLabel(""); l.Truncation = fyne.TextTruncateEllipsis; return l },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(filepath.Base(d.Skipped[i].Path) + ": " + d.Skipped[i].Reason)
		})
	skipTitle := widget.NewLabelWithStyle(fmt.Sprintf(lang.L("Skipped files: %d"), len(d.Skipped)), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	classScroll := container.NewVScroll(classes)
	classScroll.SetMinSize(fyne.NewSize(0, 240))
	left := container.NewBorder(
		container.NewVBox(summary, widget.NewLabelWithStyle(lang.L("Images per class"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			classScroll, skipTitle), nil, nil, nil, skipped)
	nav := container.NewHBox(b.prev, b.pageLb, b.next)
	right := container.NewBorder(nav, nil, nil, nil, container.NewVScroll(b.gridObject()))
	split := container.NewHSplit(left, right)
	split.Offset = 0.25
	return split
}

func (b *dataBrowser) gridObject() fyne.CanvasObject {
	// the thumbnails' parents, in order
	grid := container.NewGridWithColumns(12)
	for k := range b.thumbs {
		grid.Add(container.NewBorder(nil, b.labels[k], nil, nil, b.thumbs[k]))
	}
	return grid
}

// BrowseData opens the data set browser in its own window.
func (s *Studio) BrowseData() {
	if s.data == nil {
		return
	}
	b := newDataBrowser(s.data)
	w := s.app.NewWindow(lang.L("Data set — ") + s.data.Name)
	w.SetContent(b.content())
	w.Resize(fyne.NewSize(1100, 720))
	b.win = w
	w.Show()
}
