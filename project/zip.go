package project

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

const (
	// maxZipTotalBytes caps the uncompressed bytes LoadZip reads from one
	// archive; entries past it are skipped.
	maxZipTotalBytes = 4 << 30
	// maxZipEntryBytes caps the uncompressed size of one archive entry.
	maxZipEntryBytes = 256 << 20
	// maxZipRatio is the largest uncompressed-to-compressed size ratio
	// accepted; larger ones are taken for a zip bomb.
	maxZipRatio = 1000
	// zipReadBudget bounds the entry bytes held in memory at once by all
	// decoding workers.
	zipReadBudget = 1 << 30
)

// zipLimits bounds what one archive may make LoadZip read and decode.
type zipLimits struct {
	totalBytes int64 // uncompressed bytes read from all entries
	entryBytes int64 // uncompressed bytes of one entry
	readBudget int64 // entry bytes held in memory at once
	image      imageLimits
}

// defaultZipLimits are LoadZip's limits.
var defaultZipLimits = zipLimits{
	totalBytes: maxZipTotalBytes,
	entryBytes: maxZipEntryBytes,
	readBudget: zipReadBudget,
	image:      defaultImageLimits,
}

// zipEntry is an image entry of an archive to decode.
type zipEntry struct {
	f     *zip.File
	name  string // the entry's name inside the archive
	class string // label folder, "" for none
}

// LoadZip loads every image inside the zip archive at zipPath, shaped by
// pre (see Preprocess). Nothing is extracted to disk: entries are read and
// decoded in memory by the same decoders, header checks and pixel limits as
// LoadFolderWith.
//
// Labels come from the first folder level inside the archive, as for a
// folder; a single top-level folder that wraps every entry (as a zipped
// folder usually has) is looked through. Hidden entries (a path element
// starting with ".") and macOS "__MACOSX" metadata are ignored. Entries that
// cannot be used are listed in Dataset.Skipped as "ZIPPATH/ENTRY" with a
// reason: unsafe names ("..", absolute paths, backslashes, drive letters:
// "unsafe path in archive"), entries over 256 MiB uncompressed, entries
// whose declared sizes expand more than 1000 times ("suspicious compression
// ratio"), entries past a total of 4 GiB uncompressed, encrypted, corrupt
// or truncated entries, and files that are not usable images.
//
// A file that is not a zip archive is an error; an archive with no usable
// image returns the Dataset (with its Skipped list) and an error wrapping
// ErrNoUsableImages. progress and ctx work as for LoadFolderWith.
func LoadZip(ctx context.Context, zipPath string, pre Preprocess, progress func(done, total int)) (*Dataset, error) {
	size, channels, err := pre.shape()
	if err != nil {
		return nil, fmt.Errorf("loading archive %s: %w", zipPath, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(zipPath)
	if err != nil {
		return nil, fmt.Errorf("loading archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loading archive: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("loading archive: %s is not a regular file", zipPath)
	}
	name := strings.TrimSuffix(filepath.Base(zipPath), filepath.Ext(zipPath))
	d, _, err := loadZipFrom(ctx, f, fi.Size(), zipPath, name, size, channels, pre.Resize == ResizePad, defaultZipLimits, progress)
	return d, err
}

// shape validates pre and returns its size and channels (0 channels means
// 1).
func (pre Preprocess) shape() (size, channels int, err error) {
	channels = pre.Channels
	if channels == 0 {
		channels = 1
	}
	if channels != 1 && channels != 3 {
		return 0, 0, fmt.Errorf("channels must be 1 or 3, got %d", pre.Channels)
	}
	if pre.Size < 1 || pre.Size > maxFolderImageSize {
		return 0, 0, fmt.Errorf("image size %d is out of range 1..%d", pre.Size, maxFolderImageSize)
	}
	return pre.Size, channels, nil
}

// loadZipFrom is LoadZip over an archive of length size read from ra;
// source is the archive's path (Dataset.Source and the prefix of skipped
// entries' paths). It also returns the uncompressed bytes it reserved for
// reading, never more than lim.totalBytes.
func loadZipFrom(ctx context.Context, ra io.ReaderAt, size int64, source, name string, imgSize, channels int, pad bool, lim zipLimits, progress func(done, total int)) (*Dataset, int64, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names are skipped below
		return nil, 0, fmt.Errorf("%s is not a zip archive (or is damaged): %w", source, err)
	}
	files := append([]*zip.File(nil), zr.File...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })

	var skipped []Skipped
	skip := func(entry, reason string) {
		skipped = append(skipped, Skipped{Path: source + "/" + entry, Reason: reason})
	}
	// First pass: the safe, visible regular entries, for the wrapper check.
	var keep []*zip.File
	for _, f := range files {
		if f.Mode().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		if !safeEntryName(f.Name) {
			skip(f.Name, "unsafe path in archive")
			continue
		}
		if hiddenEntry(f.Name) {
			continue
		}
		keep = append(keep, f)
	}
	wrapper := wrapperFolder(keep)

	var entries []zipEntry
	var reserved int64
	for _, f := range keep {
		rel := strings.TrimPrefix(f.Name, wrapper)
		class := ""
		if i := strings.IndexByte(rel, '/'); i >= 0 {
			class = rel[:i]
		}
		switch {
		case !imageExts[strings.ToLower(path.Ext(f.Name))]:
			skip(f.Name, "not an image")
		case !f.Mode().IsRegular():
			skip(f.Name, "not a regular file")
		case f.Flags&0x1 != 0:
			skip(f.Name, "encrypted entry")
		case f.UncompressedSize64 == 0:
			skip(f.Name, "empty file")
		case f.UncompressedSize64 > maxZipRatio*f.CompressedSize64:
			skip(f.Name, "suspicious compression ratio")
		case f.UncompressedSize64 > uint64(lim.entryBytes):
			skip(f.Name, fmt.Sprintf("entry too large (%d bytes uncompressed, limit %d)", f.UncompressedSize64, lim.entryBytes))
		case reserved+int64(f.UncompressedSize64) > lim.totalBytes:
			skip(f.Name, fmt.Sprintf("archive holds more than %d bytes of uncompressed data; entry not read", lim.totalBytes))
		default:
			reserved += int64(f.UncompressedSize64)
			entries = append(entries, zipEntry{f: f, name: f.Name, class: class})
		}
	}

	cands := make([]candidate, len(entries))
	for i, e := range entries {
		cands[i] = candidate{path: source + "/" + e.name, class: e.class}
	}
	readBudget := newPixelBudget(lim.readBudget) // counts bytes, not pixels
	results, ok := decodeAll(ctx, len(entries), func(i int, budget *pixelBudget) decoded {
		pix, reason := decodeZipEntry(entries[i].f, imgSize, channels, pad, lim, readBudget, budget)
		return decoded{pix: pix, reason: reason}
	}, progress)
	if !ok {
		return nil, reserved, ctx.Err()
	}
	d := &Dataset{Name: name, Source: source, Width: imgSize, Height: imgSize, Channels: channels}
	d, err = assemble(d, cands, results, skipped, source)
	return d, reserved, err
}

// decodeZipEntry reads one entry into memory (never more than its declared
// uncompressed size) and decodes it.
func decodeZipEntry(f *zip.File, size, channels int, pad bool, lim zipLimits, readBudget, pixBudget *pixelBudget) (pix []uint8, reason string) {
	defer func() {
		if rec := recover(); rec != nil {
			pix, reason = nil, fmt.Sprintf("corrupt entry: %v", rec)
		}
	}()
	want := int64(f.UncompressedSize64) // checked against lim.entryBytes by the caller
	readBudget.acquire(want)
	defer readBudget.release(want)
	rc, err := f.Open()
	if err != nil {
		if errors.Is(err, zip.ErrAlgorithm) {
			return nil, "unsupported compression method"
		}
		return nil, "corrupt entry: " + errText(err)
	}
	defer rc.Close()
	buf := make([]byte, want)
	if n, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Sprintf("truncated entry: %d of %d bytes", n, want)
		}
		return nil, "corrupt entry: " + errText(err)
	}
	// The whole declared size is in; the entry must end here (this also
	// runs archive/zip's checksum check).
	var one [1]byte
	if n, err := rc.Read(one[:]); n > 0 {
		return nil, "corrupt entry: more data than its declared size"
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, "corrupt entry: " + errText(err)
	}
	return decodeImage(bytes.NewReader(buf), size, channels, pad, lim.image, pixBudget)
}

// safeEntryName reports whether an archive entry name is a plain relative
// slash-separated path: no "..", no absolute path or drive letter, no
// backslash, no empty element and no control character.
func safeEntryName(name string) bool {
	if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, `\:`) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	if strings.HasPrefix(name, "/") {
		return false
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

// hiddenEntry reports whether any element of a (safe) entry name starts
// with "." or is macOS's "__MACOSX" metadata folder.
func hiddenEntry(name string) bool {
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, ".") || el == "__MACOSX" {
			return true
		}
	}
	return false
}

// wrapperFolder returns "NAME/" when every file lies inside the same
// top-level folder NAME (none directly at the archive root), else "".
func wrapperFolder(files []*zip.File) string {
	top := ""
	for i, f := range files {
		j := strings.IndexByte(f.Name, '/')
		if j < 0 {
			return ""
		}
		if i == 0 {
			top = f.Name[:j+1]
		} else if f.Name[:j+1] != top {
			return ""
		}
	}
	return top
}
