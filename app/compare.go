package app

import (
	"encoding/csv"
	"fmt"
	"fyne.io/fyne/v2/lang"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/training"
)

// compareColumns are the Compare view's columns after the model ones.
var compareColumns = []string{"fid", "kid", "is", "precision", "recall", "density", "coverage", "ms_ssim", "class_coverage", "class_kl", "memorized"}

// comparePanel is the Compare view: every evaluation of the project's runs
// and of this session in one sortable table, exportable as CSV.
type comparePanel struct {
	rows    []*training.Report
	sortBy  int  // column index
	desc    bool // descending
	table   *widget.Table
	sortSel *widget.Select
	dirBtn  *widget.Button
	csvBtn  *widget.Button
	note    *widget.Label
	human   *widget.Label // the human-evaluation rounds (Rate tab)
	content fyne.CanvasObject
}

// compareHeads are all column titles: source, model, step, N, evaluator,
// then the metrics.
func compareHeads() []string {
	h := []string{lang.L("Evaluated"), lang.L("Model"), lang.L("Step"), "N", lang.L("Evaluator")}
	for _, k := range compareColumns {
		h = append(h, training.MetricByKey(k).Title)
	}
	return h
}

// cell is the text of row r, column c.
func compareCell(r *training.Report, c int) string {
	switch c {
	case 0:
		return r.Source
	case 1:
		return r.Model
	case 2:
		return strconv.Itoa(r.Step)
	case 3:
		return strconv.Itoa(r.N)
	case 4:
		return r.Evaluator
	}
	return training.FormatNumber(training.MetricByKey(compareColumns[c-5]).Value(r))
}

// compareLess orders rows by column c.
func compareLess(a, b *training.Report, c int) int {
	switch c {
	case 0, 1, 4:
		return cmpString(compareCell(a, c), compareCell(b, c))
	case 2:
		return a.Step - b.Step
	case 3:
		return a.N - b.N
	}
	m := training.MetricByKey(compareColumns[c-5])
	x, y := m.Value(a), m.Value(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Studio) buildComparePanel() *comparePanel {
	p := &comparePanel{sortBy: 5}
	heads := compareHeads()
	p.table = widget.NewTableWithHeaders(
		func() (int, int) { return len(p.rows), len(heads) },
		func() fyne.CanvasObject { return widget.NewLabel(lang.L("mnist-lenet@00000000")) },
		func(id widget.TableCellID, o fyne.CanvasObject) {
			l := o.(*widget.Label)
			l.Truncation = fyne.TextTruncateEllipsis
			if id.Row < len(p.rows) {
				l.SetText(compareCell(p.rows[id.Row], id.Col))
			}
		})
	p.table.CreateHeader = func() fyne.CanvasObject { return widget.NewButton("", nil) }
	p.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		b := o.(*widget.Button)
		if id.Row >= 0 { // row headers: the row number
			b.SetText(strconv.Itoa(id.Row + 1))
			b.OnTapped = nil
			return
		}
		t := heads[id.Col]
		if id.Col == p.sortBy {
			t += map[bool]string{false: " ▲", true: " ▼"}[p.desc]
		}
		b.SetText(t)
		col := id.Col
		b.OnTapped = func() { p.sort(col, col == p.sortBy && !p.desc) }
	}
	p.table.SetColumnWidth(0, 340)
	for c := 1; c < len(heads); c++ {
		p.table.SetColumnWidth(c, 110)
	}
	p.table.SetColumnWidth(4, 170)
	p.sortSel = widget.NewSelect(heads, func(h string) {
		if i := slices.Index(heads, h); i >= 0 && i != p.sortBy {
			p.sort(i, p.desc)
		}
	})
	p.dirBtn = widget.NewButtonWithIcon(lang.L("Reverse"), theme.MoveDownIcon(), func() { p.sort(p.sortBy, !p.desc) })
	p.csvBtn = widget.NewButtonWithIcon(lang.L("Export CSV…"), theme.DocumentSaveIcon(), func() {
		pickSaveFile(s.win, lang.L("Export the comparison"), "comparison.csv", lang.L("CSV"), []string{".csv"}, func(path string) {
			if err := p.exportCSV(path); err != nil {
				s.showError(err)
			}
		})
	})
	p.note = widget.NewLabel(lang.L("Every evaluation of this session and of the open project's runs. Compare only rows with the same N and evaluator: FID is biased at small N."))
	p.note.Wrapping = fyne.TextWrapWord
	bar := container.NewHBox(widget.NewLabel(lang.L("Sort by")), p.sortSel, p.dirBtn, p.csvBtn)
	p.human = widget.NewLabel(lang.L("No rounds yet."))
	p.human.Wrapping = fyne.TextWrapWord
	humanCard := widget.NewCard(lang.L("Human evaluation"), lang.L("rounds of the Rate tab, with 95 % bootstrap intervals"), p.human)
	p.content = container.NewBorder(container.NewVBox(p.note, bar), humanCard, nil, nil, p.table)
	p.sortSel.SetSelected(heads[p.sortBy])
	return p
}

// add appends an evaluation and keeps the order.
func (p *comparePanel) add(rs ...*training.Report) {
	p.rows = append(p.rows, rs...)
	p.sort(p.sortBy, p.desc)
}

// sort orders the rows by column c (stable), descending when desc.
func (p *comparePanel) sort(c int, desc bool) {
	p.sortBy, p.desc = c, desc
	slices.SortStableFunc(p.rows, func(a, b *training.Report) int {
		if desc {
			return compareLess(b, a, c)
		}
		return compareLess(a, b, c)
	})
	heads := compareHeads()
	if p.sortSel.Selected != heads[c] {
		p.sortSel.SetSelected(heads[c])
	}
	p.table.Refresh()
}

// writeCSV writes the table with full-precision numbers.
func (p *comparePanel) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"source", "model", "step", "n", "seed", "evaluator"}
	head = append(head, compareColumns...)
	head = append(head, "kid_std", "is_std", "ms_ssim_real", "confident", "seconds")
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, r := range p.rows {
		rec := []string{r.Source, r.Model, strconv.Itoa(r.Step), strconv.Itoa(r.N), strconv.FormatUint(r.Seed, 10), r.Evaluator}
		for _, k := range compareColumns {
			rec = append(rec, f(training.MetricByKey(k).Value(r)))
		}
		rec = append(rec, f(r.KIDStd), f(r.ISStd), f(r.MSSSIMReal), f(r.Confident), f(r.Seconds))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// exportCSV writes the table to path.
func (p *comparePanel) exportCSV(path string) error {
	if filepath.Ext(path) == "" {
		path += ".csv"
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("export comparison: %w", err)
	}
	if err := p.writeCSV(f); err != nil {
		f.Close()
		return fmt.Errorf("export comparison: %w", err)
	}
	return f.Close()
}

// loadProjectEvals puts the evaluations recorded in the project's runs in
// the table (replacing those of a project open before).
func (s *Studio) loadProjectEvals() {
	p := s.compare
	p.rows = nil
	if s.proj != nil {
		for _, r := range s.proj.Runs {
			evs, err := training.ReadEvals(filepath.Join(s.proj.RunDir(r.ID), training.EvalsFile))
			if err == nil {
				p.rows = append(p.rows, evs...)
			}
		}
	}
	p.sort(p.sortBy, p.desc)
}
