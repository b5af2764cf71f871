package app

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"github.com/go-text/typesetting/font"
)

// Fyne's bundled font has no CJK glyphs. For a Chinese interface the theme
// uses a system font that has them: the one fontconfig names for zh-CN
// (Debian's fonts-noto-cjk), else a known file of the platform (Microsoft
// YaHei, PingFang, …). Such fonts usually come as TrueType collections
// (.ttc), which Fyne cannot read, so the chosen face is copied out of the
// collection into a standalone font in memory.

// cjkProbe is a character every candidate font must have (训, "train").
const cjkProbe = '训'

// cjkCandidates are known CJK font files of each platform, with the face
// index of their Simplified Chinese face.
func cjkCandidates(bold bool) []fontFile {
	switch runtime.GOOS {
	case "windows":
		dir := filepath.Join(os.Getenv("WINDIR"), "Fonts")
		if os.Getenv("WINDIR") == "" {
			dir = `C:\Windows\Fonts`
		}
		if bold {
			return []fontFile{{filepath.Join(dir, "msyhbd.ttc"), 0}, {filepath.Join(dir, "simhei.ttf"), 0}}
		}
		return []fontFile{{filepath.Join(dir, "msyh.ttc"), 0}, {filepath.Join(dir, "simhei.ttf"), 0}, {filepath.Join(dir, "simsun.ttc"), 0}}
	case "darwin":
		return []fontFile{{"/System/Library/Fonts/PingFang.ttc", 0}, {"/System/Library/Fonts/STHeiti Light.ttc", 0},
			{"/System/Library/Fonts/Hiragino Sans GB.ttc", 0}}
	}
	weight := "Regular"
	if bold {
		weight = "Bold"
	}
	return []fontFile{
		{"/usr/share/fonts/opentype/noto/NotoSansCJK-" + weight + ".ttc", 2}, // face 2 is SC
		{"/usr/share/fonts/noto-cjk/NotoSansCJK-" + weight + ".ttc", 2},
		{"/usr/share/fonts/google-noto-cjk/NotoSansCJK-" + weight + ".ttc", 2},
		{"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0},
		{"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0},
		{"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0},
	}
}

type fontFile struct {
	path  string
	index int
}

// fontconfigCJK asks fontconfig for its Simplified Chinese sans-serif face.
func fontconfigCJK(bold bool) (fontFile, bool) {
	if runtime.GOOS == "windows" {
		return fontFile{}, false
	}
	fcMatch, err := exec.LookPath("fc-match")
	if err != nil {
		return fontFile{}, false
	}
	pattern := "sans-serif:lang=zh-cn"
	if bold {
		pattern = "sans-serif:bold:lang=zh-cn"
	}
	out, err := exec.Command(fcMatch, "-f", "%{file}|%{index}", pattern).Output()
	if err != nil {
		return fontFile{}, false
	}
	path, idx, ok := strings.Cut(strings.TrimSpace(string(out)), "|")
	if !ok || path == "" {
		return fontFile{}, false
	}
	i, _ := strconv.Atoi(idx)
	return fontFile{path, i}, true
}

// findCJKFont returns the first system font with Chinese glyphs, as a
// resource Fyne can use, or nil when the system has none.
func findCJKFont(bold bool) fyne.Resource {
	var cands []fontFile
	if f, ok := fontconfigCJK(bold); ok {
		cands = append(cands, f)
	}
	for _, c := range append(cands, cjkCandidates(bold)...) {
		if r, err := loadCJKFont(c); err == nil {
			return r
		}
	}
	return nil
}

// loadCJKFont reads one face of a font file (a collection or not) and
// checks that Fyne's font parser reads it and that it has Chinese glyphs.
func loadCJKFont(f fontFile) (fyne.Resource, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte("ttcf")) {
		if data, err = ttcFace(data, f.index); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	face, err := font.ParseTTF(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	if _, ok := face.NominalGlyph(cjkProbe); !ok {
		return nil, fmt.Errorf("%s has no Chinese glyphs", f.path)
	}
	name := strings.TrimSuffix(filepath.Base(f.path), filepath.Ext(f.path)) + "-" + strconv.Itoa(f.index) + ".otf"
	return fyne.NewStaticResource(name, data), nil
}

// ttcFace copies face index of a TrueType/OpenType collection into a
// standalone font file: the face's table directory, then its tables, each
// at a 4-byte aligned offset (tables shared between faces are copied).
func ttcFace(ttc []byte, index int) ([]byte, error) {
	be := binary.BigEndian
	if len(ttc) < 12 {
		return nil, errors.New("truncated font collection")
	}
	n := int(be.Uint32(ttc[8:]))
	if index < 0 || index >= n || len(ttc) < 12+4*n {
		return nil, fmt.Errorf("font collection has no face %d", index)
	}
	off := int(be.Uint32(ttc[12+4*index:]))
	if off+12 > len(ttc) {
		return nil, errors.New("truncated font collection")
	}
	numTables := int(be.Uint16(ttc[off+4:]))
	dir := off + 12
	if dir+16*numTables > len(ttc) {
		return nil, errors.New("truncated font collection")
	}
	head := 12 + 16*numTables
	size := head
	for i := 0; i < numTables; i++ {
		rec := ttc[dir+16*i:]
		start, length := int(be.Uint32(rec[8:])), int(be.Uint32(rec[12:]))
		if start < 0 || length < 0 || start+length > len(ttc) {
			return nil, errors.New("font table outside the collection")
		}
		size += (length + 3) &^ 3
	}
	out := make([]byte, size)
	copy(out, ttc[off:off+12]) // sfnt version, table count, search fields
	pos := head
	for i := 0; i < numTables; i++ {
		rec := ttc[dir+16*i : dir+16*i+16]
		start, length := int(be.Uint32(rec[8:])), int(be.Uint32(rec[12:]))
		dst := out[12+16*i:]
		copy(dst, rec[:8]) // tag, checksum
		be.PutUint32(dst[8:], uint32(pos))
		be.PutUint32(dst[12:], uint32(length))
		copy(out[pos:], ttc[start:start+length])
		pos += (length + 3) &^ 3
	}
	return out, nil
}
