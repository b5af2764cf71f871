package project_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/genstudio/genstudio/project"
)

func TestCacheLoad(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	cache := filepath.Join(root, "cache")
	writeFile(t, filepath.Join(src, "a", "1.png"), encodePNG(t, uniformGray(8, 8, 10)))
	writeFile(t, filepath.Join(src, "b", "2.png"), encodePNG(t, uniformGray(8, 8, 240)))
	writeFile(t, filepath.Join(src, "b", "bad.png"), []byte("junk"))
	pre := project.Preprocess{Size: 4, Channels: 1}
	loads := 0
	load := func(pre project.Preprocess) func() (*project.Dataset, error) {
		return func() (*project.Dataset, error) {
			loads++
			return project.LoadSource(context.Background(), src, pre, nil)
		}
	}
	get := func(pre project.Preprocess, wantCached bool) *project.Dataset {
		t.Helper()
		d, cached, err := project.CacheLoad(cache, src, pre, load(pre))
		if err != nil {
			t.Fatal(err)
		}
		if cached != wantCached {
			t.Fatalf("cached = %v, want %v", cached, wantCached)
		}
		return d
	}

	first := get(pre, false)
	second := get(pre, true)
	if loads != 1 {
		t.Errorf("loader ran %d times, want 1", loads)
	}
	if !bytes.Equal(first.Pixels, second.Pixels) || sprint(first.Labels) != sprint(second.Labels) ||
		sprint(first.Classes) != sprint(second.Classes) || sprint(first.Skipped) != sprint(second.Skipped) ||
		first.Name != second.Name || second.Source != src || second.Width != 4 || second.C() != 1 {
		t.Errorf("cached data set differs:\n%+v\n%+v", first, second)
	}

	// Other settings: a separate cache entry.
	rgb := get(project.Preprocess{Size: 4, Channels: 3}, false)
	if rgb.C() != 3 {
		t.Errorf("RGB load has %d channels", rgb.C())
	}
	get(project.Preprocess{Size: 4, Channels: 3}, true)
	get(pre, true)

	// A changed source is rebuilt.
	writeFile(t, filepath.Join(src, "b", "3.png"), encodePNG(t, uniformGray(8, 8, 100)))
	if d := get(pre, false); d.Len() != 3 {
		t.Errorf("rebuilt data set has %d images, want 3", d.Len())
	}
	get(pre, true)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(src, "a", "1.png"), later, later)
	get(pre, false)

	// A damaged cache file is ignored and rebuilt, in every way of damage.
	os.RemoveAll(cache)
	get(pre, false)
	files, _ := filepath.Glob(filepath.Join(cache, "*.dscache"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want 1", files)
	}
	file := files[0]
	good, _ := os.ReadFile(file)
	damage := map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)-10] },
		"empty":     func(b []byte) []byte { return nil },
		"flipped":   func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-20] ^= 0xff; return c },
		"bad magic": func(b []byte) []byte { c := bytes.Clone(b); c[0] = 'X'; return c },
		"huge count": func(b []byte) []byte {
			c := bytes.Clone(b)
			copy(c[32:40], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
			return c
		},
		"extra bytes": func(b []byte) []byte { return append(bytes.Clone(b), 1, 2, 3) },
		"garbage":     func(b []byte) []byte { return bytes.Repeat([]byte("garbage!"), 100) },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(file, f(good), 0o644); err != nil {
				t.Fatal(err)
			}
			before := loads
			d, cached, err := project.CacheLoad(cache, src, pre, load(pre))
			if err != nil {
				t.Fatal(err)
			}
			if cached || loads != before+1 {
				t.Errorf("damaged cache was trusted")
			}
			if d.Len() != 3 {
				t.Errorf("got %d images", d.Len())
			}
			get(pre, true) // rewritten whole
		})
	}
	get(pre, true)
}

func TestCacheLoadErrors(t *testing.T) {
	root := t.TempDir()
	boom := errors.New("boom")
	d, cached, err := project.CacheLoad(filepath.Join(root, "cache"), filepath.Join(root, "nope"), project.Preprocess{Size: 4, Channels: 1},
		func() (*project.Dataset, error) { return nil, boom })
	if !errors.Is(err, boom) || d != nil || cached {
		t.Errorf("load error: got %v %v %v", d, cached, err)
	}
	// The cache folder cannot be created: the data set comes with ErrCacheWrite.
	blocker := filepath.Join(root, "file")
	writeFile(t, blocker, []byte("x"))
	src := filepath.Join(root, "data")
	writeFile(t, filepath.Join(src, "1.png"), encodePNG(t, uniformGray(4, 4, 9)))
	d, cached, err = project.CacheLoad(filepath.Join(blocker, "cache"), src, project.Preprocess{Size: 4, Channels: 1},
		func() (*project.Dataset, error) {
			return project.LoadSource(context.Background(), src, project.Preprocess{Size: 4, Channels: 1}, nil)
		})
	if !errors.Is(err, project.ErrCacheWrite) || d == nil || d.Len() != 1 || cached {
		t.Errorf("unwritable cache: got %v %v %v", d, cached, err)
	}
}

func TestCacheLoadMNISTSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("loads MNIST")
	}
	cache := t.TempDir()
	pre := project.Preprocess{Size: 28, Channels: 1}
	load := func() (*project.Dataset, error) {
		return project.LoadSource(context.Background(), project.MNISTSource, pre, nil)
	}
	if _, cached, err := project.CacheLoad(cache, project.MNISTSource, pre, load); err != nil || cached {
		t.Fatalf("first load: cached=%v err=%v", cached, err)
	}
	start := time.Now()
	d, cached, err := project.CacheLoad(cache, project.MNISTSource, pre, load)
	took := time.Since(start)
	if err != nil || !cached {
		t.Fatalf("second load: cached=%v err=%v", cached, err)
	}
	if d.Len() != 60000 || d.Labels[0] != 5 {
		t.Errorf("cached MNIST: %d images, first label %d", d.Len(), d.Labels[0])
	}
	t.Logf("reading 60,000 cached 28x28 images took %v", took)
	if took > time.Second {
		t.Errorf("reading the cache took %v, want well under a second", took)
	}
}
