package project

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrSingleImage is returned (wrapped) by LoadSource for a single image
// file, which is not a data set.
var ErrSingleImage = errors.New("a single image is not a data set; drop its folder")

// sourceKind is what LoadSource found at a path.
type sourceKind int

const (
	kindUnknown sourceKind = iota
	kindFolder
	kindZip
	kindIDXImages
	kindIDXLabels
	kindCIFAR
	kindImage
	kindGzipOther
	kindEmpty
)

// cifarName matches the names of the CIFAR-10 binary batches.
var cifarName = regexp.MustCompile(`^(data_batch_[0-9]+|test_batch)\.bin$`)

// LoadSource loads a data set from whatever a user may drop on the window,
// shaped by pre (see Preprocess; Channels 0 means 1):
//
//   - MNISTSource ("mnist"): the built-in MNIST training digits;
//   - MNISTTestSource ("mnist-test"): the built-in MNIST test digits;
//   - a folder: LoadFolderWith;
//   - a zip archive: LoadZip;
//   - an IDX images file (magic 0x00000803), plain or gzip-compressed, such
//     as MNIST's train-images-idx3-ubyte[.gz]; its labels are read from the
//     file beside it named with "labels"/"idx1" for "images"/"idx3"
//     (train-labels-idx1-ubyte[.gz], plain or .gz), or are all -1 when
//     there is none;
//   - a CIFAR-10 binary batch (data_batch_N.bin, test_batch.bin, or any
//     other .bin file): LoadCIFAR10.
//
// The kind is found by content (zip, gzip and IDX magic numbers, image
// headers) where possible, by name otherwise. A single image file is an
// error wrapping ErrSingleImage. IDX and CIFAR images are resized and
// converted to pre with Conform. The Dataset's Source is path.
//
// progress and ctx work as for LoadFolderWith; progress may not be called
// for the single-file formats. A folder or archive with no usable image
// returns the Dataset with its Skipped list and an error wrapping
// ErrNoUsableImages.
func LoadSource(ctx context.Context, path string, pre Preprocess, progress func(done, total int)) (*Dataset, error) {
	size, channels, err := pre.shape()
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	pre = Preprocess{Size: size, Channels: channels}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if path == MNISTSource || path == MNISTTestSource {
		load := LoadMNIST
		if path == MNISTTestSource {
			load = LoadMNISTTest
		}
		d, err := load()
		if err != nil {
			return nil, err
		}
		return conform(d, pre)
	}
	kind, err := sniffSource(path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	switch kind {
	case kindFolder:
		return LoadFolderWith(ctx, path, pre, progress)
	case kindZip:
		return LoadZip(ctx, path, pre, progress)
	case kindIDXImages:
		d, err := LoadIDX(path, idxLabelsFor(path))
		if err != nil {
			return nil, err
		}
		return conform(d, pre)
	case kindIDXLabels:
		return nil, fmt.Errorf("loading %s: this is an IDX labels file; drop the images file beside it (…-images-idx3-ubyte)", base)
	case kindCIFAR:
		d, err := LoadCIFAR10(path)
		if err != nil {
			return nil, err
		}
		return conform(d, pre)
	case kindImage:
		return nil, fmt.Errorf("loading %s: %w", base, ErrSingleImage)
	case kindGzipOther:
		return nil, fmt.Errorf("loading %s: a gzip file that does not hold IDX images (unpack archives such as .tar.gz first)", base)
	case kindEmpty:
		return nil, fmt.Errorf("loading %s: the file is empty", base)
	}
	return nil, fmt.Errorf("loading %s: not a supported data set (a folder of images, a .zip of images, MNIST IDX images or a CIFAR-10 .bin batch)", base)
}

// conform shapes d to pre, keeping d's Source.
func conform(d *Dataset, pre Preprocess) (*Dataset, error) {
	out, err := d.Conform(pre.Size, pre.Channels)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", d.Name, err)
	}
	return out, nil
}

// sniffSource finds what kind of data set lies at path.
func sniffSource(path string) (sourceKind, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return kindUnknown, fmt.Errorf("loading data set: %w", err)
	}
	if fi.IsDir() {
		return kindFolder, nil
	}
	if !fi.Mode().IsRegular() {
		return kindUnknown, fmt.Errorf("loading data set: %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return kindEmpty, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return kindUnknown, fmt.Errorf("loading data set: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return kindUnknown, fmt.Errorf("loading data set: reading %s: %w", path, err)
	}
	head = head[:n]
	base := filepath.Base(path)
	ext := strings.ToLower(filepath.Ext(base))
	if kind := sniffBytes(head); kind != kindUnknown {
		if kind == kindGzipOther {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return kindUnknown, fmt.Errorf("loading data set: reading %s: %w", path, err)
			}
			kind = sniffGzip(f)
		}
		// A CIFAR batch has no magic number: its first bytes are a label
		// and pixels, which could look like anything but a zip or gzip.
		if cifarName.MatchString(base) && kind != kindZip && kind != kindGzipOther {
			return kindCIFAR, nil
		}
		return kind, nil
	}
	switch {
	case ext == ".zip":
		return kindUnknown, fmt.Errorf("loading %s: not a zip archive (or a damaged one)", base)
	case ext == ".bin":
		return kindCIFAR, nil
	case imageExts[ext]:
		return kindImage, nil
	}
	return kindUnknown, nil
}

// sniffBytes finds a kind from a file's first bytes: zip, gzip (reported
// as kindGzipOther for sniffGzip to look inside), IDX images or labels, or
// an image format; kindUnknown otherwise.
func sniffBytes(head []byte) sourceKind {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return kindGzipOther
	case len(head) >= 4 && binary.BigEndian.Uint32(head) == idxImagesMagic:
		return kindIDXImages
	case len(head) >= 4 && binary.BigEndian.Uint32(head) == idxLabelsMagic:
		return kindIDXLabels
	}
	if _, _, err := image.DecodeConfig(bytes.NewReader(head)); err == nil || !errors.Is(err, image.ErrFormat) {
		// A known image format, even if 512 bytes are not enough to
		// read its whole header.
		return kindImage
	}
	return kindUnknown
}

// sniffGzip looks at the first decompressed bytes of a gzip stream.
func sniffGzip(r io.Reader) sourceKind {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return kindGzipOther
	}
	defer zr.Close()
	var magic [4]byte
	if _, err := io.ReadFull(zr, magic[:]); err != nil {
		return kindGzipOther
	}
	switch binary.BigEndian.Uint32(magic[:]) {
	case idxImagesMagic:
		return kindIDXImages
	case idxLabelsMagic:
		return kindIDXLabels
	}
	return kindGzipOther
}

// idxLabelsFor returns the IDX labels file beside an IDX images file
// (train-images-idx3-ubyte[.gz] → train-labels-idx1-ubyte[.gz], plain or
// compressed), or "" when there is none.
func idxLabelsFor(imagesPath string) string {
	dir, base := filepath.Split(imagesPath)
	stem := strings.TrimSuffix(base, ".gz")
	lab := strings.Replace(stem, "images", "labels", 1)
	lab = strings.Replace(lab, "idx3", "idx1", 1)
	if lab == stem {
		return ""
	}
	for _, name := range []string{lab, lab + ".gz"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
