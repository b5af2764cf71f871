package models_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
)

func TestSpecsList(t *testing.T) {
	var names []string
	for _, s := range models.Specs() {
		names = append(names, s.Name())
	}
	want := []string{"gan/mlp", "gan/conv", "vae/mlp", "vae/conv", "ddpm/mlp", "ddpm/conv"}
	if !slices.Equal(names, want) {
		t.Fatalf("specs %v, want %v", names, want)
	}
	if l := models.Specs()[0].Label; l != "GAN (MLP, seed)" {
		t.Fatalf("first label %q", l)
	}
	if !slices.Equal(models.Families, []string{"gan", "vae", "ddpm"}) {
		t.Fatalf("families %v", models.Families)
	}
	for _, f := range models.Families {
		if !slices.Equal(models.Architectures[f], []string{"mlp", "conv"}) {
			t.Fatalf("%s architectures %v", f, models.Architectures[f])
		}
	}
	labels := map[string]bool{}
	for _, s := range models.Specs() {
		if s.Label == "" || labels[s.Label] {
			t.Errorf("%s: label %q empty or repeated", s.Name(), s.Label)
		}
		labels[s.Label] = true
		keys, flags := map[string]bool{}, map[string]bool{}
		for _, f := range s.AllFields() {
			if f.Key == "" || f.Label == "" || f.Flag == "" || keys[f.Key] || flags[f.Flag] {
				t.Errorf("%s: field %+v lacks a key, label or flag, or repeats one", s.Name(), f)
			}
			keys[f.Key], flags[f.Flag] = true, true
			if (f.Kind == models.KindChoice) != (len(f.Choices) > 0) || (f.Kind != models.KindChoice && !(f.Lo <= f.Hi)) {
				t.Errorf("%s: field %s has range %s", s.Name(), f.Key, f.Range())
			}
		}
	}
}

// TestSpecsBuildDefaults: every variant's default passes its own range
// check and builds the model of that family and architecture, through
// Build and through New.
func TestSpecsBuildDefaults(t *testing.T) {
	for _, s := range models.Specs() {
		t.Run(s.Name(), func(t *testing.T) {
			cfg, err := models.DefaultConfig(s.Family, s.Arch)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CheckFields(nil); err != nil {
				t.Fatalf("default refused: %v", err)
			}
			if err := s.CheckFields(cfg); err != nil {
				t.Fatalf("default JSON refused: %v", err)
			}
			want, _ := json.Marshal(s.Default())
			if string(cfg) != string(want) {
				t.Fatalf("DefaultConfig %s, Default %s", cfg, want)
			}
			for _, build := range []func([]byte) (models.Model, error){s.Build, func(c []byte) (models.Model, error) { return models.New(s.Family, c) }} {
				m, err := build(cfg)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(m.Config())
				if m.Family() != s.Family || models.ArchOf(b) != s.Arch {
					t.Errorf("built %s/%s", m.Family(), models.ArchOf(b))
				}
				m.Close()
			}
		})
	}
}

// outside returns values just outside f's range (JSON-encodable).
func outside(f models.Field) []any {
	switch f.Kind {
	case models.KindChoice:
		return []any{"nope", 3}
	case models.KindSizes:
		return []any{[]int{}, []int{int(f.Lo) - 1}, []int{16, int(f.Hi) + 1}, "64"}
	}
	out := []any{f.Hi + 1, f.Lo - 1, "x"}
	if f.OpenLo {
		out = append(out, f.Lo)
	}
	if f.OpenHi {
		out = append(out, f.Hi)
	}
	if f.Kind == models.KindInt {
		out = append(out, f.Lo+0.5)
	}
	return out
}

// TestSpecRangesRefuse: a value outside a field's range is refused by
// CheckFields with a message naming the field, and by the model itself
// (its Validate reads the same ranges); the bounds are accepted.
func TestSpecRangesRefuse(t *testing.T) {
	for _, s := range models.Specs() {
		for _, f := range s.AllFields() {
			t.Run(s.Name()+"/"+f.Key, func(t *testing.T) {
				for _, v := range outside(f) {
					b, _ := json.Marshal(map[string]any{f.Key: v})
					err := s.CheckFields(b)
					if err == nil {
						t.Fatalf("%s accepted", b)
					}
					// A value of the wrong JSON type fails in decoding; the
					// others are named by the field's label.
					if !strings.Contains(err.Error(), "cannot unmarshal") && !strings.Contains(err.Error(), f.Label) {
						t.Errorf("%s: message %q does not name %q", b, err, f.Label)
					}
					if m, err := s.Build(b); err == nil {
						m.Close()
						t.Fatalf("the model accepted %s", b)
					}
				}
				if f.Kind == models.KindInt || f.Kind == models.KindFloat {
					for _, v := range []float64{f.Lo, f.Hi} {
						if (v == f.Lo && f.OpenLo) || (v == f.Hi && f.OpenHi) {
							continue
						}
						b, _ := json.Marshal(map[string]any{f.Key: v})
						if err := s.CheckFields(b); err != nil {
							t.Errorf("bound %s refused: %v", b, err)
						}
					}
				}
			})
		}
	}
	s, err := models.SpecOf("ddpm", "conv")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFields([]byte(`{"features":300}`)); err == nil || err.Error() != "U-Net features must be 1..128, got 300" {
		t.Fatalf("message %v", err)
	}
	// The model's own Validate gives the same message.
	c := models.DefaultUNetDDPMConfig()
	c.Features = 300
	if err := c.Validate(); err == nil || err.Error() != "U-Net features must be 1..128, got 300" {
		t.Fatalf("Validate: %v", err)
	}
}

func TestFieldParse(t *testing.T) {
	s, _ := models.SpecOf("gan", "mlp")
	sizes, _ := s.FieldByFlag("g-hidden")
	if v, err := sizes.Parse(" 32, 64 "); err != nil || !slices.Equal(v.([]int), []int{32, 64}) {
		t.Fatalf("sizes %v %v", v, err)
	}
	for _, bad := range []string{"", "32, x", "0", "16385"} {
		if _, err := sizes.Parse(bad); err == nil {
			t.Errorf("sizes %q accepted", bad)
		}
	}
	latent, _ := s.FieldByFlag("latent")
	if v, err := latent.Parse("1e2"); err != nil || v != 100 {
		t.Fatalf("latent 1e2: %v %v", v, err)
	}
	for _, bad := range []string{"abc", "1.5", "0", "4097"} {
		if _, err := latent.Parse(bad); err == nil || !strings.HasPrefix(err.Error(), "Latent size") {
			t.Errorf("latent %q: %v", bad, err)
		}
	}
	lr, _ := s.FieldByFlag("lr")
	if v, err := lr.Parse("2e-4"); err != nil || v != 2e-4 {
		t.Fatalf("lr: %v %v", v, err)
	}
	if _, err := lr.Parse("1"); err == nil || err.Error() != "Learning rate must be in (0, 1), got 1" {
		t.Fatalf("lr 1: %v", err)
	}
	d, _ := models.SpecOf("ddpm", "mlp")
	sched, _ := d.FieldByFlag("schedule")
	if v, err := sched.Parse("cosine"); err != nil || v != "cosine" {
		t.Fatalf("schedule: %v %v", v, err)
	}
	if _, err := sched.Parse("quadratic"); err == nil {
		t.Fatal("schedule quadratic accepted")
	}
	if _, ok := d.FieldByFlag("features"); ok {
		t.Fatal("the MLP DDPM has a features flag")
	}
}

func TestSpecOfAliases(t *testing.T) {
	for _, c := range []struct{ family, arch, want string }{
		{"gan", "", "gan/mlp"}, {"gan", "mlp", "gan/mlp"}, {"gan", "conv", "gan/conv"},
		{"vae", "conv", "vae/conv"}, {"ddpm", "mlp", "ddpm/mlp"},
		{"ddpm", "conv", "ddpm/conv"}, {"ddpm", "unet", "ddpm/conv"},
	} {
		s, err := models.SpecOf(c.family, c.arch)
		if err != nil || s.Name() != c.want {
			t.Errorf("SpecOf(%q, %q) = %s, %v; want %s", c.family, c.arch, s.Name(), err, c.want)
		}
	}
	for _, c := range []struct{ family, arch, want string }{
		{"gan", "unet", `the gan family has no "unet" architecture`},
		{"flow", "mlp", `unknown model family "flow"`},
	} {
		if _, err := models.SpecOf(c.family, c.arch); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SpecOf(%q, %q): %v", c.family, c.arch, err)
		}
	}
	a, err := models.DefaultConfig("ddpm", "unet")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := models.DefaultConfig("ddpm", "conv")
	if string(a) != string(b) || models.ArchOf(a) != "conv" {
		t.Fatalf("unet default %s, conv default %s", a, b)
	}
}

// TestOldUNetConfigBuilds: configs written before the U-Net's arch became
// "conv" say "unet"; they still build the U-Net (so old checkpoints load).
func TestOldUNetConfigBuilds(t *testing.T) {
	old := []byte(`{"arch":"unet","features":4,"width":8,"height":8,"temb":16,"batch":4,"sample_steps":5}`)
	if models.ArchOf(old) != "unet" {
		t.Fatal("ArchOf rewrote the arch")
	}
	m, err := models.New("ddpm", old)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	names := map[string]bool{}
	for _, nt := range m.State() {
		names[nt.Name] = true
	}
	if !names["inc.weight"] || !names["out.weight"] || names["temb.weight"] {
		t.Fatalf("built a model with state %v", names)
	}
	c := m.Config().(models.DDPMConfig)
	if c.Arch != "unet" || c.Features != 4 || c.Validate() != nil {
		t.Fatalf("config %+v", c)
	}
	// The same config with "conv" builds the same tensors.
	m2, err := models.New("ddpm", []byte(strings.Replace(string(old), `"unet"`, `"conv"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if len(m2.State()) != len(m.State()) {
		t.Fatalf("%d and %d tensors", len(m2.State()), len(m.State()))
	}
	for i, nt := range m2.State() {
		if nt.Name != m.State()[i].Name || !nt.T.Shape().Eq(m.State()[i].T.Shape()) {
			t.Fatalf("tensor %d: %s and %s", i, nt.Name, m.State()[i].Name)
		}
	}
}

// ExampleSpec_CheckFields checks a config against a variant's ranges.
func ExampleSpec_CheckFields() {
	s, err := models.SpecOf("ddpm", "unet")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Name(), "-", s.Label)
	fmt.Println(s.CheckFields([]byte(`{"features": 300}`)))
	fmt.Println(s.CheckFields([]byte(`{"features": 64, "t": 500}`)))
	// Output:
	// ddpm/conv - Diffusion (DDPM, U-Net)
	// U-Net features must be 1..128, got 300
	// <nil>
}
