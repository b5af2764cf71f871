package widgets

import (
	"fmt"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
)

// sampleCards returns three cards as the Evaluate tab fills them after one run.
func sampleCards() []fyne.CanvasObject {
	fid := NewMetricCard("FID", "Fréchet distance of evaluator features; lower is better")
	fid.SetValueStd(23.4567, 0.412)
	fid.SetReference(1.234)
	fid.SetCaption("N = 10,000 · evaluator mnist-lenet")

	is := NewMetricCard("Inception Score", "Confident and varied class predictions; higher is better")
	is.SetValue(2.0417)
	is.SetReference(9.87)
	is.SetCaption("N = 10,000 · 10 splits")

	cov := NewMetricCard("Classes covered", "Classes with at least one confident sample")
	cov.SetValue(6)
	cov.SetReference(10)
	cov.SetCaption("of 10 · confidence ≥ 0.9")
	return []fyne.CanvasObject{fid, is, cov}
}

func ExampleFormatMetric() {
	for _, v := range []float64{23.45678, 10000, 0.001234, math.NaN(), math.Inf(1)} {
		fmt.Println(FormatMetric(v))
	}
	// Output:
	// 23.46
	// 10000
	// 0.001234
	// —
	// ∞
}

func TestFormatMetric(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		want string
	}{
		{"NaN", math.NaN(), "—"},
		{"+Inf", math.Inf(1), "∞"},
		{"-Inf", math.Inf(-1), "-∞"},
		{"zero", 0, "0"},
		{"negative zero", math.Copysign(0, -1), "0"},
		{"small integer", 10, "10"},
		{"negative integer", -3, "-3"},
		{"large integer", 60000, "60000"},
		{"four digits", 12.3456, "12.35"},
		{"trailing zeros trimmed", 0.5, "0.5"},
		{"one decimal", 9.9, "9.9"},
		{"rounds up to integer", 9.99996, "10"},
		{"below one", 0.123456, "0.1235"},
		{"kid sized", 0.00123, "0.00123"},
		{"thousands", 1234.56, "1235"},
		{"above 1e4 rounds", 12345.6, "12346"},
		{"tiny uses exponent", 1.23456e-5, "1.235e-05"},
		{"huge uses exponent", 1.23456e16, "1.235e+16"},
		{"negative fraction", -0.04567, "-0.04567"},
		{"small negative", -0.00012344, "-0.0001234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatMetric(tt.v); got != tt.want {
				t.Errorf("FormatMetric(%v) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

func TestMetricCard_Text(t *testing.T) {
	test.NewTempApp(t)

	c := NewMetricCard("FID", "lower is better")
	tests := []struct {
		name      string
		set       func()
		value     string
		reference string
	}{
		{"new card", func() {}, "—", ""},
		{"value", func() { c.SetValue(12.3456) }, "12.35", ""},
		{"value and std", func() { c.SetValueStd(12.3456, 0.4321) }, "12.35 ± 0.4321", ""},
		{"negative std shown as magnitude", func() { c.SetValueStd(2, -0.25) }, "2 ± 0.25", ""},
		{"NaN std hidden", func() { c.SetValueStd(2, math.NaN()) }, "2", ""},
		{"NaN value hides std", func() { c.SetValueStd(math.NaN(), 0.1) }, "—", ""},
		{"reference", func() { c.SetValue(3); c.SetReference(1.234) }, "3", "real data: 1.234"},
		{"reference label", func() { c.SetReferenceLabel("test set") }, "3", "test set: 1.234"},
		{"NaN hides reference", func() { c.SetReference(math.NaN()) }, "3", ""},
		{"infinite value", func() { c.SetValue(math.Inf(1)) }, "∞", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.set()
			value, reference := c.Text()
			if value != tt.value || reference != tt.reference {
				t.Errorf("Text() = %q, %q; want %q, %q", value, reference, tt.value, tt.reference)
			}
		})
	}
}

func TestMetricCard_Renders(t *testing.T) {
	test.NewTempApp(t)

	cards := sampleCards()
	w := test.NewTempWindow(t, container.NewGridWithColumns(3, cards...))
	w.Resize(fyne.NewSize(900, 150))
	test.AssertRendersToImage(t, "metriccard_three.png", w.Canvas())

	fid := cards[0].(*MetricCard)
	r := test.WidgetRenderer(fid).(*metricCardRenderer)
	if r.value.Text != "23.46 ± 0.412" || !r.ref.Visible() || r.ref.Text != "real data: 1.234" {
		t.Errorf("value %q, reference %q (visible %v)", r.value.Text, r.ref.Text, r.ref.Visible())
	}
	if !r.value.TextStyle.Bold || r.value.TextSize <= r.title.TextSize {
		t.Errorf("value should be bold and larger than the title: %+v, size %v vs %v",
			r.value.TextStyle, r.value.TextSize, r.title.TextSize)
	}
	if r.ref.Position().Y < r.value.Position().Y || r.ref.Position().X <= r.value.Position().X {
		t.Errorf("reference at %v should sit to the right of the value at %v", r.ref.Position(), r.value.Position())
	}
	if len(r.help) == 0 || len(r.caption) != 1 || r.caption[0].Text != "N = 10,000 · evaluator mnist-lenet" {
		t.Errorf("help lines %d, caption %v", len(r.help), r.caption)
	}

	fid.Clear()
	if value, reference := fid.Text(); value != "—" || reference != "" {
		t.Errorf("after Clear Text() = %q, %q; want —, empty", value, reference)
	}
	if r.value.Text != "—" || r.ref.Visible() || len(r.caption) != 0 || fid.Caption() != "" {
		t.Errorf("after Clear: value %q, reference visible %v, caption lines %d", r.value.Text, r.ref.Visible(), len(r.caption))
	}
	if fid.Title() != "FID" || len(r.help) == 0 {
		t.Error("Clear should keep the title and explanation")
	}
}

func TestMetricCard_WrapsWhenNarrow(t *testing.T) {
	test.NewTempApp(t)

	c := sampleCards()[0].(*MetricCard)
	w := test.NewTempWindow(t, container.NewVBox(c))
	w.Resize(fyne.NewSize(200, 240))

	r := test.WidgetRenderer(c).(*metricCardRenderer)
	size := c.Size()
	if size.Width < metricCardMinWidth {
		t.Fatalf("card width %v below its minimum %v", size.Width, metricCardMinWidth)
	}
	if len(r.help) < 2 {
		t.Errorf("help should wrap onto several lines at width %v, got %d", size.Width, len(r.help))
	}
	// Nothing may stick out of the card.
	for _, o := range r.Objects() {
		if !o.Visible() {
			continue
		}
		var end fyne.Position
		if tx, ok := o.(interface{ MinSize() fyne.Size }); ok && o != r.bg {
			end = o.Position().Add(tx.MinSize())
		} else {
			end = o.Position().Add(o.Size())
		}
		if end.X > size.Width+0.5 || end.Y > size.Height+0.5 {
			t.Errorf("object %T %v ends at %v outside the card %v", o, o, end, size)
		}
	}
	// The reference moves below the value when it does not fit beside it.
	if r.ref.Position().Y <= r.value.Position().Y {
		t.Errorf("reference at %v should be below the value at %v on a narrow card", r.ref.Position(), r.value.Position())
	}
}

func TestMetricCard_MinSize(t *testing.T) {
	test.NewTempApp(t)

	c := NewMetricCard("FID", "")
	min := c.MinSize()
	if min.Width < metricCardMinWidth || min.Height < 40 {
		t.Errorf("MinSize = %v, want at least %vx40", min, metricCardMinWidth)
	}
	c.SetCaption("N = 10,000")
	if c.MinSize().Height <= min.Height {
		t.Error("a caption should make the card taller")
	}
}

func TestWrapText(t *testing.T) {
	test.NewTempApp(t)

	const size = 11
	width := fyne.MeasureText("aaaa bbbb", size, fyne.TextStyle{}).Width
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"blank", "  ", nil},
		{"fits", "aaaa bbbb", []string{"aaaa bbbb"}},
		{"wraps between words", "aaaa bbbb cccc", []string{"aaaa bbbb", "cccc"}},
		{"newline", "aa\nbb", []string{"aa", "bb"}},
		{"long word split", "aaaaaaaaaaaaaaaaaaaa", nil}, // checked below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wrapText(tt.in, width, size, fyne.TextStyle{})
			if tt.name == "long word split" {
				joined := ""
				for _, l := range got {
					if fyne.MeasureText(l, size, fyne.TextStyle{}).Width > width {
						t.Errorf("line %q wider than %v", l, width)
					}
					joined += l
				}
				if len(got) < 2 || joined != tt.in {
					t.Errorf("got %q, want the word split over several lines", got)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
