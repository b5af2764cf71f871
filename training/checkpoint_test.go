package training_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/genstudio/genstudio/models"
	"github.com/genstudio/genstudio/training"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	in := map[string]training.Tensor{
		"a":     {Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		"b.c":   {Shape: []int{1}, Data: []float32{-0.5}},
		"empty": {Shape: []int{0}, Data: nil},
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	var buf bytes.Buffer
	if err := training.WriteSafetensors(&buf, in, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if hl := binary.LittleEndian.Uint64(buf.Bytes()); (8+hl)%8 != 0 {
		t.Fatalf("header length %d does not keep the data 8-byte aligned", hl)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
	out, meta, err := training.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" || len(out) != 3 || out["a"].Data[5] != 6 || out["b.c"].Data[0] != -0.5 {
		t.Fatalf("read back %v %v", out, meta)
	}
}

func writeRaw(t *testing.T, header string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func TestReadSafetensorsRejectsHostileFiles(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		path       func(t *testing.T) string
	}{
		{"too short", "too short", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "s")
			os.WriteFile(p, []byte{1, 2}, 0o644)
			return p
		}},
		{"huge header length", "impossible", func(t *testing.T) string {
			var b bytes.Buffer
			binary.Write(&b, binary.LittleEndian, uint64(1)<<60)
			p := filepath.Join(t.TempDir(), "h")
			os.WriteFile(p, b.Bytes(), 0o644)
			return p
		}},
		{"not json", "not JSON", func(t *testing.T) string { return writeRaw(t, "{nope", nil) }},
		{"offsets past the end", "do not fit", func(t *testing.T) string {
			return writeRaw(t, `{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}`, make([]byte, 8))
		}},
		{"shape disagrees with range", "do not fit", func(t *testing.T) string {
			return writeRaw(t, `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8))
		}},
		{"overflowing shape", "do not fit", func(t *testing.T) string {
			return writeRaw(t, `{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil)
		}},
		{"wrong dtype", "dtype F16", func(t *testing.T) string {
			return writeRaw(t, `{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := training.ReadSafetensors(tc.path(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func saveSmall(t *testing.T, seed uint64, gHidden []int) string {
	t.Helper()
	c := models.DefaultGANConfig()
	c.GHidden, c.DHidden, c.Batch, c.Seed = gHidden, []int{16}, 4, seed
	m, err := models.NewGAN(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 7, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCheckpointChecksArchitecture(t *testing.T) {
	good := saveSmall(t, 1, []int{8})
	tensors, meta, err := training.ReadSafetensors(good)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(t *testing.T, mut func(map[string]training.Tensor, map[string]string)) string {
		ts := map[string]training.Tensor{}
		for k, v := range tensors {
			ts[k] = v
		}
		md := map[string]string{}
		for k, v := range meta {
			md[k] = v
		}
		mut(ts, md)
		var b bytes.Buffer
		if err := training.WriteSafetensors(&b, ts, md); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "x.safetensors")
		os.WriteFile(p, b.Bytes(), 0o644)
		return p
	}
	for _, tc := range []struct {
		name, want string
		mut        func(map[string]training.Tensor, map[string]string)
	}{
		{"missing tensor", "generator.0.weight is missing", func(ts map[string]training.Tensor, _ map[string]string) { delete(ts, "generator.0.weight") }},
		{"wrong shape", "has shape [2 2]", func(ts map[string]training.Tensor, _ map[string]string) {
			ts["generator.0.bias"] = training.Tensor{Shape: []int{2, 2}, Data: make([]float32, 4)}
		}},
		{"extra tensor", "does not belong", func(ts map[string]training.Tensor, _ map[string]string) {
			ts["zzz"] = training.Tensor{Shape: []int{1}, Data: []float32{1}}
		}},
		{"not ours", "not a Gen Studio checkpoint", func(_ map[string]training.Tensor, md map[string]string) { delete(md, "format") }},
		{"unknown family", "unknown model family", func(_ map[string]training.Tensor, md map[string]string) {
			md["genstudio"] = strings.Replace(md["genstudio"], `"family":"gan"`, `"family":"rnn"`, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := training.LoadCheckpoint(rewrite(t, tc.mut))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		b, _ := os.ReadFile(good)
		p := filepath.Join(t.TempDir(), "t.safetensors")
		os.WriteFile(p, b[:len(b)-100], 0o644)
		if _, err := training.LoadCheckpoint(p); err == nil {
			t.Fatal("truncated checkpoint loaded")
		}
	})
	ck, err := training.LoadCheckpoint(good)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Close()
	if ck.Info.Step != 7 {
		t.Fatalf("info %+v", ck.Info)
	}
}

// A failed checkpoint write (here: the folder is a file) is reported and
// leaves nothing half-written behind.
func TestCheckpointWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	c := models.DefaultGANConfig()
	c.GHidden, c.DHidden, c.Batch = []int{8}, []int{8}, 4
	m, _ := models.NewGAN(c)
	defer m.Close()
	p := filepath.Join(dir, "a.safetensors")
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 1}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	if err := training.SaveCheckpoint(filepath.Join(blocker, "b.safetensors"), m, training.CheckpointInfo{}); err == nil {
		t.Fatal("write into a file path succeeded")
	}
	// Overwriting a good checkpoint goes through a temporary file.
	m.TrainStep(make([]uint8, 4*784), rand.New(rand.NewPCG(1, 1)))
	if err := training.SaveCheckpoint(p, m, training.CheckpointInfo{Step: 2}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p)
	if bytes.Equal(before, after) {
		t.Fatal("checkpoint not replaced")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
