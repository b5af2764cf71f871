package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/genstudio/genstudio/models"
)

// TestFormFollowsSpecs: the form's menu, fields, hints and ranges are those
// of models.Specs, and a config naming an alias ("unet") shows its variant.
func TestFormFollowsSpecs(t *testing.T) {
	test.NewTempApp(t)
	f := newModelForm()
	specs := models.Specs()
	var labels []string
	for _, s := range specs {
		labels = append(labels, s.Label)
	}
	if !slices.Equal(f.family.Options, labels) {
		t.Fatalf("menu %v, specs %v", f.family.Options, labels)
	}
	for i, s := range specs {
		items := f.forms[i].Items
		if len(items) != len(s.Fields) {
			t.Fatalf("%s: %d fields, spec has %d", s.Name(), len(items), len(s.Fields))
		}
		for k, fd := range s.Fields {
			if help := itemHelp(items[k]); items[k].Text != fd.Label || help != fd.Help {
				t.Errorf("%s: field %d is %q (%q), spec says %q (%q)", s.Name(), k, items[k].Text, help, fd.Label, fd.Help)
			}
		}
	}
	for _, cf := range models.CommonFields() {
		if in := f.input(cf.Key); in == nil || in.Label != cf.Label {
			t.Errorf("no shared input for %s", cf.Key)
		}
	}

	// The ranges are the spec's: the conv VAE takes 256 features, not 512.
	f.family.SetSelected("VAE (conv)")
	feat := f.input("features")
	for text, ok := range map[string]bool{"256": true, "512": false, "0": false} {
		feat.entry.SetText(text)
		if err := feat.entry.Validate(); (err == nil) != ok {
			t.Errorf("conv VAE features %s: %v", text, err)
		}
	}
	f.family.SetSelected("Diffusion (DDPM, U-Net)")
	f.input("features").entry.SetText("300")
	if _, err := f.read(); err == nil || !strings.Contains(err.Error(), "U-Net features must be 1..128, got 300") {
		t.Fatalf("read: %v", err)
	}
	f.input("features").entry.SetText("4")
	f.input("t").entry.SetText("1") // the model's own lower bound
	set, err := f.read()
	if err != nil {
		t.Fatal(err)
	}
	if set.family != "ddpm" || models.ArchOf(set.config) != "conv" {
		t.Fatalf("settings %s %s", set.family, set.config)
	}

	// A model whose config still says "unet" shows as the U-Net.
	f.family.SetSelected(labels[0])
	m, err := models.New("ddpm", []byte(`{"arch":"unet","features":4,"width":8,"height":8,"temb":16,"batch":4,"sample_steps":5}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f.show(m, 3)
	if f.family.Selected != "Diffusion (DDPM, U-Net)" || f.input("features").text() != "4" || f.seed.text() != "3" {
		t.Fatalf("shown as %q, features %q", f.family.Selected, f.input("features").text())
	}
	if variantIndex("ddpm", "unet") != variantIndex("ddpm", "conv") || variantIndex("gan", "unet") != -1 {
		t.Fatal("variantIndex does not resolve aliases")
	}
}

// TestPresets: each preset selects its variant and the form then reads a
// configuration with the preset's techniques; changing the model by hand
// leaves the preset.
func TestPresets(t *testing.T) {
	f := newModelForm()
	if def := models.DefaultPreset(); f.preset.Selected != def.Name {
		t.Errorf("the form opens with preset %q, want the default %q", f.preset.Selected, def.Name)
	}
	for _, p := range models.Presets() {
		f.preset.SetSelected(p.Name)
		set, err := f.read()
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if set.family != p.Family || models.ArchOf(set.config) != p.Arch {
			t.Errorf("%s: the form reads %s/%s", p.Name, set.family, models.ArchOf(set.config))
		}
		want := map[string]any{}
		if err := json.Unmarshal(set.config, &want); err != nil {
			t.Fatal(err)
		}
		cfg, err := models.PresetConfig(p, defaults(variants[variantIndex(p.Family, p.Arch)]))
		if err != nil {
			t.Fatal(err)
		}
		if p.Steps > 0 && set.steps != p.Steps {
			t.Errorf("%s: the form trains %d steps, the recipe %d", p.Name, set.steps, p.Steps)
		}
		for k, v := range cfg {
			if k == "width" || k == "height" || k == "channels" || k == "seed" {
				continue
			}
			if fmt.Sprint(want[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", p.Name, k, want[k], v)
			}
		}
	}
	f.family.SetSelected(variants[len(variants)-1].Label)
	if f.preset.Selected != "" || len(f.extra) != 0 {
		t.Errorf("after a change by hand the preset is %q, extra %v", f.preset.Selected, f.extra)
	}
}

// itemHelp is the help a form row shows: its hint, or the wrapped text
// under its widget.
func itemHelp(it *widget.FormItem) string {
	if box, ok := it.Widget.(*fyne.Container); ok && it.HintText == " " {
		for _, o := range box.Objects {
			if rt, ok := o.(*widget.RichText); ok {
				return rt.String()
			}
		}
	}
	return it.HintText
}
