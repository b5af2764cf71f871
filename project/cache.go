package project

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	// cacheMagic starts every data set cache file.
	cacheMagic = "GSDSCACH"
	// cacheVersion is the cache file format version; files of another
	// version are rebuilt. Bump it when the loaders change their output.
	cacheVersion = 1
	// cacheExt is the extension of data set cache files.
	cacheExt = ".dscache"
	// cacheMaxSource and cacheMaxMeta bound the variable-length header
	// fields read back from a cache file.
	cacheMaxSource = 1 << 16
	cacheMaxMeta   = 1 << 30
)

// ErrCacheWrite is returned (wrapped) by CacheLoad, together with the
// freshly loaded data set, when the data set could not be written to the
// cache. The data set is good; the error is only worth a warning.
var ErrCacheWrite = errors.New("could not write the data set cache")

// cacheMeta is the JSON part of a cache file.
type cacheMeta struct {
	Name    string    `json:"name"`
	Labels  []int     `json:"labels"`
	Classes []string  `json:"classes"`
	Skipped []Skipped `json:"skipped"`
}

// cacheHeader is the fixed-size part of a cache file after the magic.
type cacheHeader struct {
	Version     uint32
	Size        int32 // Preprocess.Size
	PreChannels int32 // Preprocess.Channels
	Width       uint32
	Height      uint32
	Channels    uint32
	Count       uint64 // number of images
	Fingerprint [32]byte
	SourceLen   uint32
	MetaLen     uint32
}

// CacheLoad returns the data set loaded from source with pre, from a cache
// file in cacheDir when one exists for the same source (as given), the same
// Preprocess and an unchanged fingerprint of the source (for a folder: the
// relative paths, sizes and modification times of its files, hidden ones
// aside; for a file: its size and modification time, and those of the IDX
// labels file beside it), reporting true. Otherwise it calls load, stores
// its result in cacheDir (creating it) and reports false.
//
// The cache file holds a versioned header (source, fingerprint,
// Preprocess), the labels, classes and skip list as JSON and the raw
// pixels, with a checksum; it is written atomically (temporary file, fsync,
// rename). A cache file that is damaged, of another version or otherwise
// does not match is ignored and rebuilt: its lengths are checked before
// anything is allocated.
//
// An error from load is returned as is (with load's data set, if any), and
// nothing is cached. When the data set loads but cannot be cached, CacheLoad
// returns it with an error wrapping ErrCacheWrite. The returned Dataset's
// Source is source.
func CacheLoad(cacheDir, source string, pre Preprocess, load func() (*Dataset, error)) (*Dataset, bool, error) {
	fp, fpErr := fingerprint(source)
	file := filepath.Join(cacheDir, cacheFileName(source, pre))
	if fpErr == nil {
		if d, err := readCache(file, source, pre, fp); err == nil {
			return d, true, nil
		}
	}
	d, err := load()
	if err != nil {
		return d, false, err
	}
	if d == nil {
		return nil, false, fmt.Errorf("loading %s: the loader returned no data set", source)
	}
	d.Source = source
	if fpErr != nil {
		return d, false, fmt.Errorf("%w for %s: %w", ErrCacheWrite, source, fpErr)
	}
	if err := writeCache(file, source, pre, fp, d); err != nil {
		return d, false, fmt.Errorf("%w for %s: %w", ErrCacheWrite, source, err)
	}
	return d, false, nil
}

// cacheFileName names the cache file of a source and Preprocess.
func cacheFileName(source string, pre Preprocess) string {
	key := source
	if source != MNISTSource {
		if abs, err := filepath.Abs(source); err == nil {
			key = abs
		}
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%s", key, pre.Size, pre.Channels, pre.Resize))
	return "dataset-" + hex.EncodeToString(sum[:8]) + cacheExt
}

// fingerprint hashes what identifies the current content of source without
// reading it: see CacheLoad.
func fingerprint(source string) ([32]byte, error) {
	h := sha256.New()
	if source == MNISTSource {
		fmt.Fprintf(h, "builtin mnist %d %d", len(mnistTrainImages), len(mnistTrainLabels))
		return sum32(h), nil
	}
	fi, err := os.Stat(source)
	if err != nil {
		return [32]byte{}, fmt.Errorf("fingerprinting %s: %w", source, err)
	}
	if !fi.IsDir() {
		fmt.Fprintf(h, "file %d %d\n", fi.Size(), fi.ModTime().UnixNano())
		if lab := idxLabelsFor(source); lab != "" {
			if li, err := os.Stat(lab); err == nil {
				fmt.Fprintf(h, "labels %q %d %d\n", filepath.Base(lab), li.Size(), li.ModTime().UnixNano())
			}
		}
		return sum32(h), nil
	}
	type entry struct {
		rel         string
		size, mtime int64
	}
	var entries []entry
	err = filepath.WalkDir(source, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == source {
				return err
			}
			return nil // an unreadable sub-folder: the loader skips it too
		}
		if p == source {
			return nil
		}
		if strings.HasPrefix(de.Name(), ".") {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(source, p)
		if de.IsDir() {
			if strings.Count(filepath.ToSlash(rel), "/") >= maxFolderDepth {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Stat(p) // follows links to files, as the loader does
		if err != nil {
			entries = append(entries, entry{rel: filepath.ToSlash(rel), size: -1})
			return nil
		}
		entries = append(entries, entry{rel: filepath.ToSlash(rel), size: info.Size(), mtime: info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("fingerprinting %s: %w", source, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
	fmt.Fprintf(h, "folder %d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(h, "%q %d %d\n", e.rel, e.size, e.mtime)
	}
	return sum32(h), nil
}

func sum32(h hash.Hash) (s [32]byte) {
	copy(s[:], h.Sum(nil))
	return s
}

// writeCache writes d to file atomically.
func writeCache(file, source string, pre Preprocess, fp [32]byte, d *Dataset) error {
	if d.Width < 1 || d.Width > maxFolderImageSize || d.Height < 1 || d.Height > maxFolderImageSize {
		return fmt.Errorf("image size %dx%d cannot be cached", d.Width, d.Height)
	}
	n := d.Len()
	if len(d.Labels) != n {
		return fmt.Errorf("data set has %d images but %d labels", n, len(d.Labels))
	}
	meta, err := json.Marshal(cacheMeta{Name: d.Name, Labels: d.Labels, Classes: d.Classes, Skipped: d.Skipped})
	if err != nil {
		return fmt.Errorf("encoding cache metadata: %w", err)
	}
	if len(source) > cacheMaxSource || len(meta) > cacheMaxMeta {
		return fmt.Errorf("data set description too large to cache")
	}
	hdr := cacheHeader{
		Version: cacheVersion, Size: int32(pre.Size), PreChannels: int32(pre.Channels),
		Width: uint32(d.Width), Height: uint32(d.Height), Channels: uint32(d.C()),
		Count: uint64(n), Fingerprint: fp, SourceLen: uint32(len(source)), MetaLen: uint32(len(meta)),
	}
	return writeAtomic(file, func(w io.Writer) error {
		crc := crc32.NewIEEE()
		bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
		bw.WriteString(cacheMagic)
		if err := binary.Write(bw, binary.LittleEndian, &hdr); err != nil {
			return err
		}
		bw.WriteString(source)
		bw.Write(meta)
		bw.Write(d.Pixels[:n*d.ImageSize()])
		if err := bw.Flush(); err != nil {
			return err
		}
		return binary.Write(w, binary.LittleEndian, crc.Sum32())
	})
}

// readCache reads a cache file written by writeCache and checks that it
// matches source, pre and fp.
func readCache(file, source string, pre Preprocess, fp [32]byte) (*Dataset, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	crc := crc32.NewIEEE()
	r := io.TeeReader(bufio.NewReaderSize(f, 1<<20), crc)
	var magic [len(cacheMagic)]byte
	var hdr cacheHeader
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, err
	}
	if string(magic[:]) != cacheMagic {
		return nil, errors.New("not a cache file")
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, err
	}
	switch {
	case hdr.Version != cacheVersion:
		return nil, errors.New("cache version differs")
	case int(hdr.Size) != pre.Size || int(hdr.PreChannels) != pre.Channels:
		return nil, errors.New("preprocessing differs")
	case hdr.Fingerprint != fp:
		return nil, errors.New("source changed")
	case hdr.Width < 1 || hdr.Width > maxFolderImageSize || hdr.Height < 1 || hdr.Height > maxFolderImageSize:
		return nil, errors.New("bad image size")
	case hdr.Channels != 1 && hdr.Channels != 3:
		return nil, errors.New("bad channel count")
	case int(hdr.SourceLen) != len(source) || hdr.MetaLen > cacheMaxMeta:
		return nil, errors.New("bad header lengths")
	}
	per := uint64(hdr.Width) * uint64(hdr.Height) * uint64(hdr.Channels)
	fixed := uint64(len(cacheMagic)) + uint64(binary.Size(hdr)) + uint64(hdr.SourceLen) + uint64(hdr.MetaLen) + 4
	// Count is checked against the file's real size before any
	// allocation: a damaged header cannot ask for more than is there.
	if uint64(fi.Size()) < fixed || hdr.Count > (uint64(fi.Size())-fixed)/per ||
		fixed+hdr.Count*per != uint64(fi.Size()) {
		return nil, errors.New("cache file size does not match its header")
	}
	src := make([]byte, hdr.SourceLen)
	if _, err := io.ReadFull(r, src); err != nil {
		return nil, err
	}
	if string(src) != source {
		return nil, errors.New("source differs")
	}
	metaBytes := make([]byte, hdr.MetaLen)
	if _, err := io.ReadFull(r, metaBytes); err != nil {
		return nil, err
	}
	pix := make([]uint8, hdr.Count*per)
	if _, err := io.ReadFull(r, pix); err != nil {
		return nil, err
	}
	want := crc.Sum32()
	var got uint32
	if err := binary.Read(r, binary.LittleEndian, &got); err != nil {
		return nil, err
	}
	if got != want {
		return nil, errors.New("checksum mismatch")
	}
	var meta cacheMeta
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		return nil, err
	}
	if uint64(len(meta.Labels)) != hdr.Count {
		return nil, errors.New("label count differs from image count")
	}
	for _, l := range meta.Labels {
		if l < -1 || l >= len(meta.Classes) {
			return nil, errors.New("label out of range")
		}
	}
	return &Dataset{
		Name: meta.Name, Source: source,
		Width: int(hdr.Width), Height: int(hdr.Height), Channels: int(hdr.Channels),
		Pixels: pix, Labels: meta.Labels, Classes: meta.Classes, Skipped: meta.Skipped,
	}, nil
}

// writeAtomic replaces file with what write writes: to a temporary file in
// the same folder (created with the folder when missing), synced, then
// renamed over file. On any failure the temporary file is removed and file
// is left as it was.
func writeAtomic(file string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(wrapWriter(tmp)); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("setting permissions of %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("replacing %s: %w", file, err)
	}
	syncDir(dir)
	return nil
}

// wrapWriter wraps the temporary file's writer in writeAtomic; tests
// replace it to inject write failures (a full disk).
var wrapWriter = func(w io.Writer) io.Writer { return w }

// syncDir flushes a folder's entries to disk where the platform allows;
// failures are ignored (the rename itself has succeeded).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
