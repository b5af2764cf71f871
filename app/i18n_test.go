package app

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

// windowKeys lists every message the window translates: the literal
// arguments of lang.L and tr and the keys of lang.X in the app's source, and the
// texts that reach lang.L from data (model fields, presets, round kinds,
// languages, the worker's write failures).
func windowKeys(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) == 0 {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "lang" || (sel.Sel.Name != "L" && sel.Sel.Name != "X") {
				return true
			}
			if lit, ok := c.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				keys[s] = true
			}
			return true
		})
	}
	add := func(s string) {
		if s != "" {
			keys[s] = true
		}
	}
	fields := append(models.CommonFields(), fSteps, fPreview, fSeed, fEval)
	for _, v := range variants {
		fields = append(fields, v.Fields...)
	}
	for _, f := range fields {
		add(f.Label)
		add(f.Help)
	}
	for _, m := range training.Metrics {
		add(m.Title)
		add(m.Help)
	}
	for _, p := range models.Presets() {
		add(p.Note)
	}
	for _, k := range rateKinds {
		add(k.label)
	}
	for _, l := range languages {
		add(l.name)
	}
	for _, w := range []string{currentModel, "checkpoint", "preview", "metrics line", string(errNotPositive)} {
		add(w)
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	return out
}

func readCatalogue(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := translations.ReadFile("translations/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestChineseCatalogueIsComplete checks that every message of the window
// has a Simplified Chinese translation that keeps its printf verbs, and that
// the catalogue holds no message the window no longer has.
func TestChineseCatalogueIsComplete(t *testing.T) {
	keys := windowKeys(t)
	zh := readCatalogue(t, "zh-Hans.json")
	var missing []string
	for _, k := range keys {
		v, ok := zh[k]
		if !ok || strings.TrimSpace(v) == "" {
			missing = append(missing, k)
			continue
		}
		a, b := verbs(k), verbs(v)
		if strings.Contains(v, "%[") { // reordered: the same verbs
			slices.Sort(a)
			slices.Sort(b)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%q → %q: verbs %v, want %v", k, v, b, a)
		}
	}
	if len(missing) > 0 {
		if out := os.Getenv("GENSTUDIO_I18N_MISSING"); out != "" {
			b, _ := json.MarshalIndent(missing, "", "  ")
			os.WriteFile(out, b, 0o644)
		}
		t.Errorf("%d messages have no zh-Hans translation, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
	for k := range zh {
		if !slices.Contains(keys, k) {
			t.Errorf("zh-Hans.json holds %q, which the window no longer shows", k)
		}
	}
	if en := readCatalogue(t, "en.json"); len(en) != 0 {
		for k, v := range en {
			if k != v && !slices.Contains(keys, k) {
				t.Errorf("en.json: %q", k)
			}
		}
	}
}

// verbs lists a format string's printf verbs (%d, %s, %.2f, %[2]d …) in
// order.
func verbs(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(s) && strings.IndexByte("0123456789.[]+-#", s[j]) >= 0 {
			j++
		}
		if j < len(s) && strings.IndexByte("%dsfvqxgeTtw", s[j]) >= 0 {
			if s[j] == '%' {
				i = j
				continue
			}
			v := s[i+1 : j+1]
			if k := strings.IndexByte(v, ']'); k >= 0 {
				v = v[k+1:]
			}
			out = append(out, v)
			i = j
		}
	}
	return out
}
