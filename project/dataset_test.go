package project_test

import (
	"bytes"
	"image"
	"testing"

	"github.com/genstudio/genstudio/project"
)

// tinyDataset has three 3×2 images whose pixels are 10*i + j.
func tinyDataset() *project.Dataset {
	d := &project.Dataset{Name: "tiny", Source: "test", Width: 3, Height: 2,
		Labels:  []int{0, 1, -1},
		Classes: []string{"a", "b"},
		Skipped: []project.Skipped{{Path: "x.txt", Reason: "not an image"}},
	}
	for i := range 3 {
		for j := range 6 {
			d.Pixels = append(d.Pixels, uint8(10*i+j))
		}
	}
	return d
}

func TestDatasetLen(t *testing.T) {
	tests := []struct {
		name string
		d    *project.Dataset
		want int
	}{
		{"nil", nil, 0},
		{"zero value", &project.Dataset{}, 0},
		{"zero size with pixels", &project.Dataset{Pixels: make([]uint8, 10)}, 0},
		{"tiny", tinyDataset(), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Len(); got != tt.want {
				t.Errorf("Len = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDatasetImage(t *testing.T) {
	d := tinyDataset()
	tests := []struct {
		i    int
		want []uint8
	}{
		{0, []uint8{0, 1, 2, 3, 4, 5}},
		{2, []uint8{20, 21, 22, 23, 24, 25}},
		{-1, nil},
		{3, nil},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			got := d.Image(tt.i)
			if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Image(%d) = %v, want %v", tt.i, got, tt.want)
			}
			th, _ := d.Thumbnail(tt.i).(*image.Gray)
			if tt.want == nil {
				if th != nil {
					t.Errorf("Thumbnail(%d) = %v, want nil", tt.i, th)
				}
				return
			}
			if th.Bounds() != image.Rect(0, 0, 3, 2) || !bytes.Equal(th.Pix, tt.want) {
				t.Errorf("Thumbnail(%d) = %v %v", tt.i, th.Bounds(), th.Pix)
			}
			if th.GrayAt(2, 1).Y != tt.want[5] {
				t.Errorf("Thumbnail(%d) pixel (2,1) = %d, want %d", tt.i, th.GrayAt(2, 1).Y, tt.want[5])
			}
		})
	}

	t.Run("image is a view, thumbnail a copy", func(t *testing.T) {
		d := tinyDataset()
		d.Thumbnail(1).(*image.Gray).Pix[0] = 99
		if d.Pixels[6] != 10 {
			t.Error("changing a thumbnail changed the dataset")
		}
		d.Image(1)[0] = 99
		if d.Pixels[6] != 99 {
			t.Error("Image is not a view of Pixels")
		}
		if img := d.Image(0); cap(img) != len(img) {
			t.Errorf("Image cap = %d, want %d (appending must not overwrite the next image)", cap(img), len(img))
		}
	})
}

func TestDatasetSubset(t *testing.T) {
	tests := []struct {
		n, want int
	}{
		{2, 2}, {0, 0}, {-5, 0}, {3, 3}, {100, 3},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			d := tinyDataset()
			s := d.Subset(tt.n)
			if s.Len() != tt.want || len(s.Labels) != tt.want || len(s.Pixels) != tt.want*6 {
				t.Fatalf("Subset(%d): Len %d, %d labels, %d pixels; want %d images", tt.n, s.Len(), len(s.Labels), len(s.Pixels), tt.want)
			}
			if s.Width != 3 || s.Height != 2 || s.Name != "tiny" || len(s.Classes) != 2 {
				t.Errorf("Subset lost metadata: %+v", s)
			}
			if tt.want > 0 && !bytes.Equal(s.Image(tt.want-1), d.Image(tt.want-1)) {
				t.Error("Subset images differ from the original's")
			}
			s.Classes[0] = "changed"
			if d.Classes[0] != "a" {
				t.Error("Subset shares Classes with the original")
			}
			s.Pixels = append(s.Pixels, 255)
			s.Labels = append(s.Labels, 7)
			if tt.want < 3 && (d.Pixels[tt.want*6] != uint8(10*tt.want) || d.Labels[tt.want] == 7) {
				t.Error("appending to a Subset overwrote the original")
			}
		})
	}
	var nilDS *project.Dataset
	if nilDS.Subset(3) != nil {
		t.Error("nil.Subset != nil")
	}
}
