package project

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

const (
	idxImagesMagic = 0x00000803 // unsigned bytes, 3 dimensions
	idxLabelsMagic = 0x00000801 // unsigned bytes, 1 dimension

	// idxMaxSide is the largest accepted number of rows or columns.
	idxMaxSide = 4096
	// idxMaxBytes caps the payload an IDX file may declare, checked before
	// any allocation.
	idxMaxBytes = 2_000_000_000
	// idxChunk is the largest buffer allocated ahead of the data actually
	// read, so a lying size field in a small file cannot force a huge
	// allocation.
	idxChunk = 16 << 20
)

// gzipHintRatio is the expansion assumed when sizing a buffer from a
// gzip input's length: typical for IDX image data (MNIST is about 5:1), yet
// small enough that a lying header in a small compressed file cannot cause
// a large up-front allocation. Better-compressed data still reads
// correctly, the buffer just grows as it arrives.
const gzipHintRatio = 8

// maybeGunzip returns a reader of r's content, transparently decompressed
// when it starts with the gzip magic bytes 0x1f 0x8b. It also returns how
// many content bytes r can plausibly hold (-1 when unknown), used only to
// size buffers.
func maybeGunzip(r io.Reader) (io.Reader, int64, error) {
	avail := remainingBytes(r)
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	head, _ := br.Peek(2) // a short or failing read is reported by the caller's header read
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, fmt.Errorf("opening gzip stream: %w", err)
		}
		zr.Multistream(false)
		if avail >= 0 {
			avail *= gzipHintRatio
		}
		return zr, avail, nil
	}
	return br, avail, nil
}

// remainingBytes returns how many bytes are left to read from r when that
// is cheap to know (in-memory readers and files), else -1.
func remainingBytes(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }: // *bytes.Reader, *bytes.Buffer, *strings.Reader
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return max(0, fi.Size()-pos)
	}
	return -1
}

// readHeader reads the len(hdr)-byte IDX header into hdr, checking the
// magic number as soon as its 4 bytes are in, and reports truncation
// clearly.
func readHeader(r io.Reader, hdr []byte, magic uint32) error {
	n, err := io.ReadFull(r, hdr[:4])
	if err == nil {
		if got := binary.BigEndian.Uint32(hdr); got != magic {
			return fmt.Errorf("bad magic number: expected 0x%08x, found 0x%08x", magic, got)
		}
		var m int
		m, err = io.ReadFull(r, hdr[4:])
		n += m
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("truncated: expected %d bytes of header, got %d", len(hdr), n)
		}
		return fmt.Errorf("reading header: %w", err)
	}
	return nil
}

// readPayload reads exactly total bytes from r. total must already be
// checked against idxMaxBytes but need not be trusted: the buffer starts at
// most idxChunk bytes or avail (the bytes r can plausibly hold, -1 if
// unknown), whichever is larger, and grows only as data actually arrives.
func readPayload(r io.Reader, total, avail int64, what string) ([]byte, error) {
	buf := make([]byte, 0, min(total, max(idxChunk, avail)))
	for int64(len(buf)) < total {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(total, int64(cap(buf))*2))
			copy(grown, buf)
			buf = grown
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("truncated: expected %d bytes of %s, got %d", total, what, len(buf))
			}
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
	}
	return buf, nil
}

// ReadIDXImages reads an IDX image file (magic 0x00000803: unsigned bytes,
// dimensions count×rows×cols) from r, plain or gzip-compressed (detected by
// the magic bytes 0x1f 0x8b). It returns the image count, the image size and
// count*rows*cols row-major pixels.
//
// Rows and columns must be in 1..4096 and the pixel data at most 2e9 bytes;
// these limits are checked before anything is allocated, and the buffer
// grows only as data actually arrives.
func ReadIDXImages(r io.Reader) (n, rows, cols int, pixels []uint8, err error) {
	r, avail, err := maybeGunzip(r)
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("idx images: %w", err)
	}
	var hdr [16]byte
	if err := readHeader(r, hdr[:], idxImagesMagic); err != nil {
		return 0, 0, 0, nil, fmt.Errorf("idx images: %w", err)
	}
	cnt := int64(binary.BigEndian.Uint32(hdr[4:]))
	nr := int64(binary.BigEndian.Uint32(hdr[8:]))
	nc := int64(binary.BigEndian.Uint32(hdr[12:]))
	if nr < 1 || nr > idxMaxSide || nc < 1 || nc > idxMaxSide {
		return 0, 0, 0, nil, fmt.Errorf("idx images: bad image size %dx%d: rows and columns must be in 1..%d", nr, nc, idxMaxSide)
	}
	total := cnt * nr * nc // at most 2^32 * 2^24, fits in int64
	if total > idxMaxBytes {
		return 0, 0, 0, nil, fmt.Errorf("idx images: %d images of %dx%d need %d bytes, more than the limit of %d", cnt, nr, nc, total, int64(idxMaxBytes))
	}
	pixels, err = readPayload(r, total, avail, "pixel data")
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("idx images: %w", err)
	}
	return int(cnt), int(nr), int(nc), pixels, nil
}

// ReadIDXLabels reads an IDX label file (magic 0x00000801: unsigned bytes,
// one dimension) from r, plain or gzip-compressed (detected by the magic
// bytes 0x1f 0x8b), and returns the labels (each in 0..255).
func ReadIDXLabels(r io.Reader) ([]int, error) {
	r, avail, err := maybeGunzip(r)
	if err != nil {
		return nil, fmt.Errorf("idx labels: %w", err)
	}
	var hdr [8]byte
	if err := readHeader(r, hdr[:], idxLabelsMagic); err != nil {
		return nil, fmt.Errorf("idx labels: %w", err)
	}
	cnt := int64(binary.BigEndian.Uint32(hdr[4:]))
	if cnt > idxMaxBytes {
		return nil, fmt.Errorf("idx labels: %d labels, more than the limit of %d", cnt, int64(idxMaxBytes))
	}
	raw, err := readPayload(r, cnt, avail, "label data")
	if err != nil {
		return nil, fmt.Errorf("idx labels: %w", err)
	}
	labels := make([]int, len(raw))
	for i, b := range raw {
		labels[i] = int(b)
	}
	return labels, nil
}

// LoadIDX loads a Dataset from an IDX image file and, unless labelsPath is
// empty, the matching IDX label file. Either file may be plain or
// gzip-compressed (detected by content, not by extension). With labels,
// Classes are "0" up to the largest label; without, every label is -1 and
// Classes is empty. An image/label count mismatch is an error.
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	f, err := os.Open(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("loading IDX images: %w", err)
	}
	n, rows, cols, pixels, err := ReadIDXImages(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", imagesPath, err)
	}
	d := &Dataset{
		Name:   filepath.Base(imagesPath),
		Source: imagesPath,
		Width:  cols,
		Height: rows,
		Pixels: pixels,
	}
	if labelsPath == "" {
		d.Labels = make([]int, n)
		for i := range d.Labels {
			d.Labels[i] = -1
		}
		return d, nil
	}
	lf, err := os.Open(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("loading IDX labels: %w", err)
	}
	labels, err := ReadIDXLabels(lf)
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", labelsPath, err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("loading IDX data set: %s has %d images but %s has %d labels", imagesPath, n, labelsPath, len(labels))
	}
	d.Labels = labels
	d.Classes = digitClasses(labels)
	return d, nil
}

// digitClasses returns the class names "0".."max(labels)" (empty when there
// are no labels).
func digitClasses(labels []int) []string {
	hi := -1
	for _, l := range labels {
		hi = max(hi, l)
	}
	classes := make([]string, hi+1)
	for i := range classes {
		classes[i] = strconv.Itoa(i)
	}
	return classes
}
