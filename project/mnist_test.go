package project_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/genstudio/genstudio/project"
)

func TestLoadMNIST(t *testing.T) {
	start := time.Now()
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatalf("LoadMNIST: %v", err)
	}
	t.Logf("LoadMNIST took %v", time.Since(start))

	t.Run("shape", func(t *testing.T) {
		if d.Len() != 60000 {
			t.Errorf("Len = %d, want 60000", d.Len())
		}
		if d.Width != 28 || d.Height != 28 {
			t.Errorf("size = %dx%d, want 28x28", d.Width, d.Height)
		}
		if len(d.Pixels) != 60000*28*28 {
			t.Errorf("len(Pixels) = %d, want %d", len(d.Pixels), 60000*28*28)
		}
		if len(d.Labels) != 60000 {
			t.Errorf("len(Labels) = %d, want 60000", len(d.Labels))
		}
		if d.Source != project.MNISTSource || d.Name == "" {
			t.Errorf("Name, Source = %q, %q", d.Name, d.Source)
		}
		if len(d.Skipped) != 0 {
			t.Errorf("Skipped = %v, want none", d.Skipped)
		}
	})

	t.Run("classes", func(t *testing.T) {
		want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
		if fmt.Sprint(d.Classes) != fmt.Sprint(want) {
			t.Errorf("Classes = %q, want %q", d.Classes, want)
		}
	})

	t.Run("label counts", func(t *testing.T) {
		want := [10]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
		var got [10]int
		for i, l := range d.Labels {
			if l < 0 || l > 9 {
				t.Fatalf("label %d = %d, want 0..9", i, l)
			}
			got[l]++
		}
		if got != want {
			t.Errorf("per-class counts = %v, want %v", got, want)
		}
	})

	t.Run("pixel statistics", func(t *testing.T) {
		var sum uint64
		var hi uint8
		for _, p := range d.Pixels {
			sum += uint64(p)
			hi = max(hi, p)
		}
		mean := float64(sum) / float64(len(d.Pixels))
		if mean < 30 || mean > 37 {
			t.Errorf("mean pixel = %.2f, want about 33.3", mean)
		}
		if hi != 255 {
			t.Errorf("max pixel = %d, want 255", hi)
		}
		// MNIST digits are bright strokes on a black background: the
		// corners are black.
		for i := range 100 {
			img := d.Image(i)
			if img[0] != 0 || img[27] != 0 || img[27*28] != 0 || img[28*28-1] != 0 {
				t.Fatalf("image %d has non-black corners", i)
			}
		}
	})

	t.Run("cached and independent", func(t *testing.T) {
		start := time.Now()
		d2, err := project.LoadMNIST()
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 100*time.Millisecond {
			t.Errorf("second LoadMNIST took %v, want it cached", el)
		}
		if d2 == d {
			t.Error("LoadMNIST returned the same *Dataset twice")
		}
		d2.Classes[0] = "zero"
		d2.Name = "changed"
		if d.Classes[0] != "0" || d.Name == "changed" {
			t.Error("changing one LoadMNIST result changed another")
		}
	})
}

func ExampleLoadMNIST() {
	d, err := project.LoadMNIST()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(d.Len(), "images of", d.Width, "x", d.Height, "in", len(d.Classes), "classes")
	// Output: 60000 images of 28 x 28 in 10 classes
}

func TestLoadMNISTTest(t *testing.T) {
	d, err := project.LoadMNISTTest()
	if err != nil {
		t.Fatalf("LoadMNISTTest: %v", err)
	}
	if d.Len() != 10000 || d.Width != 28 || d.Height != 28 || len(d.Labels) != 10000 || d.Source != project.MNISTTestSource {
		t.Fatalf("test set: %d images %dx%d, %d labels, source %q", d.Len(), d.Width, d.Height, len(d.Labels), d.Source)
	}
	// The t10k label counts published with the data set.
	want := [10]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
	var got [10]int
	for _, l := range d.Labels {
		got[l]++
	}
	if got != want {
		t.Errorf("per-class counts = %v, want %v", got, want)
	}
	src, err := project.LoadSource(t.Context(), project.MNISTTestSource, project.Preprocess{Size: 28, Channels: 1}, nil)
	if err != nil || src.Len() != 10000 {
		t.Fatalf("LoadSource(%q): %v", project.MNISTTestSource, err)
	}
}
