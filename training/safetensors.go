package training

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Tensor is one tensor of a checkpoint, row-major: float32 values in
// Data, or, for an integer tensor (PyTorch's int64 buffers such as
// BatchNorm's num_batches_tracked), int64 values in Ints.
type Tensor struct {
	Shape []int
	Data  []float32
	Ints  []int64
}

// dtype is the tensor's safetensors dtype and element size in bytes.
func (t Tensor) dtype() (string, int) {
	if t.Ints != nil {
		return "I64", 8
	}
	return "F32", 4
}

// len is the number of values the tensor holds.
func (t Tensor) len() int {
	if t.Ints != nil {
		return len(t.Ints)
	}
	return len(t.Data)
}

const (
	maxHeaderBytes = 16 << 20 // a checkpoint header larger than this is refused
	maxTensors     = 100000
)

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors and string metadata in the safetensors
// format: an 8-byte little-endian header length, a JSON header, then the
// raw little-endian data (F32, or I64 for integer tensors) in header order.
func WriteSafetensors(w io.Writer, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		if numel(t.Shape) != t.len() {
			return fmt.Errorf("tensor %s: shape %v does not hold %d values", n, t.Shape, t.len())
		}
		dt, es := t.dtype()
		size := int64(t.len()) * int64(es)
		header[n] = stEntry{DType: dt, Shape: t.Shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encode checkpoint header: %w", err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hj)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := bw.Write(hj); err != nil {
		return err
	}
	buf := make([]byte, 4*4096)
	for _, n := range names {
		for _, v := range tensors[n].Ints {
			binary.LittleEndian.PutUint64(buf[:8], uint64(v))
			if _, err := bw.Write(buf[:8]); err != nil {
				return err
			}
		}
		data := tensors[n].Data
		for len(data) > 0 {
			k := min(len(data), 4096)
			for i, v := range data[:k] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := bw.Write(buf[:4*k]); err != nil {
				return err
			}
			data = data[k:]
		}
	}
	return bw.Flush()
}

// ReadSafetensors reads a safetensors file written by WriteSafetensors (or
// by the Python library, float32 tensors only). It checks the header's size,
// every tensor's dtype, shape and byte range against the file's size before
// it allocates anything, so a hostile header cannot make it allocate more
// than the file holds.
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return readSafetensors(f, st.Size(), path)
}

// ReadSafetensorsMeta reads only the metadata of a safetensors file.
func ReadSafetensorsMeta(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("%s is not a checkpoint: too short", path)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderBytes || int64(hlen) > st.Size()-8 {
		return nil, fmt.Errorf("%s is not a checkpoint: header length %d is impossible for a %d-byte file", path, hlen, st.Size())
	}
	hj := make([]byte, hlen)
	if _, err := io.ReadFull(f, hj); err != nil {
		return nil, fmt.Errorf("%s: truncated header: %w", path, err)
	}
	var head struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(hj, &head); err != nil {
		return nil, fmt.Errorf("%s is not a checkpoint: header is not JSON: %w", path, err)
	}
	return head.Meta, nil
}

// DecodeSafetensors is ReadSafetensors on a file's contents held in
// memory (such as an embedded file); name names it in errors.
func DecodeSafetensors(b []byte, name string) (map[string]Tensor, map[string]string, error) {
	return readSafetensors(bytes.NewReader(b), int64(len(b)), name)
}

// readSafetensors reads size bytes of safetensors from f.
func readSafetensors(f io.Reader, size int64, path string) (map[string]Tensor, map[string]string, error) {
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, nil, fmt.Errorf("%s is not a checkpoint: too short", path)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderBytes || int64(hlen) > size-8 {
		return nil, nil, fmt.Errorf("%s is not a checkpoint: header length %d is impossible for a %d-byte file", path, hlen, size)
	}
	hj := make([]byte, hlen)
	if _, err := io.ReadFull(f, hj); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return nil, nil, fmt.Errorf("%s is not a checkpoint: header is not JSON: %w", path, err)
	}
	if len(raw) > maxTensors {
		return nil, nil, fmt.Errorf("%s: header lists %d tensors", path, len(raw))
	}
	meta := map[string]string{}
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, nil, fmt.Errorf("%s: bad metadata: %w", path, err)
		}
		delete(raw, "__metadata__")
	}
	dataSize := size - 8 - int64(hlen)
	entries := map[string]stEntry{}
	for name, m := range raw {
		var e stEntry
		if err := json.Unmarshal(m, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %s: bad entry: %w", path, name, err)
		}
		es := map[string]int64{"F32": 4, "I64": 8}[e.DType]
		if es == 0 {
			return nil, nil, fmt.Errorf("%s: tensor %s has dtype %s; Gen Studio reads F32 and I64", path, name, e.DType)
		}
		n := numel(e.Shape)
		if n < 0 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] || e.DataOffsets[1] > dataSize ||
			e.DataOffsets[1]-e.DataOffsets[0] != int64(n)*es {
			return nil, nil, fmt.Errorf("%s: tensor %s: shape %v and byte range %v do not fit the file", path, name, e.Shape, e.DataOffsets)
		}
		entries[name] = e
	}
	body := make([]byte, dataSize)
	if _, err := io.ReadFull(f, body); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated data: %w", path, err)
	}
	out := make(map[string]Tensor, len(entries))
	for name, e := range entries {
		b := body[e.DataOffsets[0]:e.DataOffsets[1]]
		if e.DType == "I64" {
			ints := make([]int64, len(b)/8)
			for i := range ints {
				ints[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
			out[name] = Tensor{Shape: append([]int(nil), e.Shape...), Ints: ints}
			continue
		}
		data := make([]float32, len(b)/4)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out[name] = Tensor{Shape: append([]int(nil), e.Shape...), Data: data}
	}
	return out, meta, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return -1
		}
		n *= d
	}
	return n
}

// injectWriter lets tests put a failing writer (a full disk) under every
// atomic write; it is the writer itself otherwise.
var injectWriter = func(path string, w io.Writer) io.Writer { return w }

// writeFileAtomic writes path through a temporary file in the same folder,
// fsyncs it and renames it into place, so a crash or a full disk never
// leaves a half-written file under the real name.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := splitPath(path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(injectWriter(path, tmp)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; the user's other tools should read it.
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var errNotCheckpoint = errors.New("not a Gen Studio checkpoint")
