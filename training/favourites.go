package training

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FavouritesDir is the folder of a project's pinned samples.
const FavouritesDir = "favourites"

// PinFavourite writes a pinned sample into dir as the next fav-NNNN.png,
// with its provenance, and returns its path.
func PinFavourite(dir string, img image.Image, p *Provenance) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	have, err := Favourites(dir)
	if err != nil {
		return "", err
	}
	next := 1
	for _, f := range have {
		var k int
		if _, err := fmt.Sscanf(filepath.Base(f), "fav-%d.png", &k); err == nil && k >= next {
			next = k + 1
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("fav-%04d.png", next))
	if err := WritePNGWith(path, img, p); err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	return path, nil
}

// Favourites lists the pinned samples in dir in the order they were
// pinned (none when dir does not exist).
func Favourites(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("favourites: %w", err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasPrefix(n, "fav-") && strings.HasSuffix(n, ".png") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// CopyFavourites copies the pinned samples of src into dst (an exported
// gallery's favourites folder) and returns how many.
func CopyFavourites(src, dst string) (int, error) {
	favs, err := Favourites(src)
	if err != nil || len(favs) == 0 {
		return 0, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, fmt.Errorf("favourites: %w", err)
	}
	for _, f := range favs {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("favourites: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return 0, fmt.Errorf("favourites: %w", err)
		}
	}
	return len(favs), nil
}
