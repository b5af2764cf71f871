package project_test

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/genstudio/genstudio/project"
)

// BenchmarkIngest10k64RGB ingests 10,000 JPEG photos (96×80, in 10 class
// folders) as 64×64 RGB: the target is under 30 s on 2 cores.
//
//	go test -run XXX -bench Ingest10k -benchtime 1x ./project/
func BenchmarkIngest10k64RGB(b *testing.B) {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, 96, 80))
	for i := 0; i < 10000; i++ {
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = uint8(rng.IntN(256)), uint8(i), uint8(p), 255
		}
		cls := filepath.Join(dir, fmt.Sprintf("class%d", i%10))
		os.MkdirAll(cls, 0o755)
		f, err := os.Create(filepath.Join(cls, fmt.Sprintf("%05d.jpg", i)))
		if err != nil {
			b.Fatal(err)
		}
		jpeg.Encode(f, img, &jpeg.Options{Quality: 85})
		f.Close()
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		d, err := project.LoadFolderWith(context.Background(), dir, project.Preprocess{Size: 64, Channels: 3}, nil)
		if err != nil || d.Len() != 10000 {
			b.Fatalf("%v, %d images", err, d.Len())
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/ingest")
}

// TestMNISTInMemoryUnder200MB: the 60,000 digits fit the memory target.
// The data set's own arrays are what it holds (LoadMNIST decodes once per
// process, so heap growth depends on which test ran first).
func TestMNISTInMemoryUnder200MB(t *testing.T) {
	d, err := project.LoadMNIST()
	if err != nil {
		t.Fatal(err)
	}
	held := float64(cap(d.Pixels)+8*cap(d.Labels)) / (1 << 20)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("60,000 images hold %.1f MiB; live heap of the test process %.1f MiB", held, float64(ms.HeapAlloc)/(1<<20))
	if held > 200 {
		t.Fatalf("MNIST holds %.0f MiB", held)
	}
}
