package training

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/png"
	"io"
	"os"
	"strings"

	"github.com/genstudio/genstudio/models"
)

// The keywords of the text chunks Gen Studio writes into its PNGs.
const (
	ChunkProvenance = "genstudio"         // iTXt: the Provenance as JSON
	ChunkParameters = "parameters"        // tEXt: Provenance.Parameters
	ChunkXMP        = "XML:com.adobe.xmp" // iTXt: an XMP packet
)

// DigitalSourceType is IPTC's term for media made by a trained model,
// which the XMP packet of every image carries.
const DigitalSourceType = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// EncodePNG writes img as PNG with p's three text chunks (none if p is nil)
// after the header.
func EncodePNG(w io.Writer, img image.Image, p *Provenance) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	b := buf.Bytes()
	if p == nil {
		_, err := w.Write(b)
		return err
	}
	meta, err := p.chunks()
	if err != nil {
		return err
	}
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, then IHDR's length, type, data, CRC
	if len(b) < ihdrEnd || !bytes.Equal(b[:8], pngSignature) {
		return errors.New("png: unexpected encoder output")
	}
	for _, part := range [][]byte{b[:ihdrEnd], meta, b[ihdrEnd:]} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

// chunks are p's tEXt and iTXt chunks, encoded.
func (p *Provenance) chunks() ([]byte, error) {
	js, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	writeChunk(&out, "iTXt", iTXt(ChunkProvenance, string(js)))
	writeChunk(&out, "tEXt", append([]byte(ChunkParameters+"\x00"), latin1(p.Parameters())...))
	writeChunk(&out, "iTXt", iTXt(ChunkXMP, p.XMP()))
	return out.Bytes(), nil
}

// iTXt is an uncompressed iTXt chunk's data: keyword, no language, text.
func iTXt(keyword, text string) []byte {
	return append([]byte(keyword+"\x00\x00\x00\x00\x00"), text...)
}

// latin1 replaces what tEXt cannot hold (its text is Latin-1) by '?'.
func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0 && r < 256 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// XMP is the XMP packet of the image: IPTC's digital source type (made by
// a trained model), the creating tool and the parameters line.
func (p *Provenance) XMP() string {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return strings.ReplaceAll(b.String(), `"`, "&quot;")
	}
	return `<?xpacket begin="` + "\ufeff" + `" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    Iptc4xmpExt:DigitalSourceType="` + DigitalSourceType + `"
    xmp:CreatorTool="` + esc(p.App+" "+p.Version) + `">
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">` + esc(p.Parameters()) + `</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>`
}

// WritePNGWith writes img to path atomically with p's text chunks.
func WritePNGWith(path string, img image.Image, p *Provenance) error {
	return writeFileAtomic(path, func(w io.Writer) error { return EncodePNG(w, img, p) })
}

// PNGText reads the tEXt and iTXt (uncompressed) chunks of a PNG stream,
// by keyword.
func PNGText(r io.Reader) (map[string]string, error) {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil || !bytes.Equal(sig[:], pngSignature) {
		return nil, errors.New("not a PNG file")
	}
	out := map[string]string{}
	for {
		var head [8]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil, fmt.Errorf("PNG ends early: %w", err)
		}
		n, typ := binary.BigEndian.Uint32(head[:4]), string(head[4:])
		if n > 1<<26 {
			return nil, fmt.Errorf("PNG chunk %q of %d bytes", typ, n)
		}
		if typ == "IEND" {
			return out, nil
		}
		if typ != "tEXt" && typ != "iTXt" {
			if _, err := io.CopyN(io.Discard, r, int64(n)+4); err != nil {
				return nil, fmt.Errorf("PNG ends early: %w", err)
			}
			continue
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("PNG ends early: %w", err)
		}
		data = data[:n]
		key, rest, ok := bytes.Cut(data, []byte{0})
		if !ok {
			continue
		}
		if typ == "tEXt" {
			out[string(key)] = string(rest) // ASCII in practice
			continue
		}
		// iTXt: compression flag, method, language\0, translated keyword\0, text
		if len(rest) < 2 || rest[0] != 0 {
			continue // compressed: not written by Gen Studio
		}
		_, rest, ok1 := bytes.Cut(rest[2:], []byte{0})
		_, text, ok2 := bytes.Cut(rest, []byte{0})
		if ok1 && ok2 {
			out[string(key)] = string(text)
		}
	}
}

// ReadProvenance reads the provenance of a PNG file Gen Studio wrote.
func ReadProvenance(path string) (*Provenance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	text, err := PNGText(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	js, ok := text[ChunkProvenance]
	if !ok {
		return nil, fmt.Errorf("%s has no Gen Studio provenance (no %q chunk)", path, ChunkProvenance)
	}
	var p Provenance
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		return nil, fmt.Errorf("%s: provenance: %w", path, err)
	}
	return &p, nil
}

// WalkGIF makes an animated GIF of n frames (images in [0, 1], one after
// the other) scaled up scale times, delay hundredths of a second each,
// looping forever; it plays forward then back.
func WalkGIF(frames []float32, n int, s models.ImageShape, scale, delay int) *gif.GIF {
	pal := color.Palette(palette.Plan9)
	if s.Channels == 1 {
		pal = make(color.Palette, 256)
		for i := range pal {
			pal[i] = color.Gray{Y: uint8(i)}
		}
	}
	g := &gif.GIF{LoopCount: 0}
	order := make([]int, 0, 2*n)
	for i := 0; i < n; i++ {
		order = append(order, i)
	}
	for i := n - 2; i > 0; i-- {
		order = append(order, i)
	}
	for _, i := range order {
		src := SampleImage(frames, i, s)
		dst := image.NewPaletted(image.Rect(0, 0, s.Width*scale, s.Height*scale), pal)
		for y := 0; y < s.Height*scale; y++ {
			for x := 0; x < s.Width*scale; x++ {
				dst.Set(x, y, src.At(x/scale, y/scale))
			}
		}
		g.Image = append(g.Image, dst)
		g.Delay = append(g.Delay, delay)
	}
	return g
}

// EncodeGIF writes g with a comment extension holding p's JSON after the
// header, where GIF readers find comments.
func EncodeGIF(w io.Writer, g *gif.GIF, p *Provenance) error {
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		return err
	}
	b := buf.Bytes()
	at, err := gifHeaderEnd(b)
	if err != nil {
		return err
	}
	var cm bytes.Buffer
	if p != nil {
		js, err := json.Marshal(p)
		if err != nil {
			return err
		}
		cm.Write([]byte{0x21, 0xFE})
		for len(js) > 0 {
			k := min(255, len(js))
			cm.WriteByte(byte(k))
			cm.Write(js[:k])
			js = js[k:]
		}
		cm.WriteByte(0)
	}
	for _, part := range [][]byte{b[:at], cm.Bytes(), b[at:]} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

// WriteGIF writes g to path atomically with p in a comment.
func WriteGIF(path string, g *gif.GIF, p *Provenance) error {
	return writeFileAtomic(path, func(w io.Writer) error { return EncodeGIF(w, g, p) })
}

// gifHeaderEnd is the offset after a GIF's header, screen descriptor and
// global colour table.
func gifHeaderEnd(b []byte) (int, error) {
	if len(b) < 13 || !bytes.HasPrefix(b, []byte("GIF8")) {
		return 0, errors.New("not a GIF stream")
	}
	at := 13
	if flags := b[10]; flags&0x80 != 0 {
		at += 3 << ((flags & 7) + 1)
	}
	if at > len(b) {
		return 0, errors.New("GIF stream ends in its colour table")
	}
	return at, nil
}

// GIFComments reads the comment extensions before a GIF's first image.
func GIFComments(b []byte) ([]string, error) {
	at, err := gifHeaderEnd(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for at+1 < len(b) && b[at] == 0x21 {
		label := b[at+1]
		at += 2
		var text []byte
		for at < len(b) && b[at] != 0 {
			k := int(b[at])
			if at+1+k > len(b) {
				return nil, errors.New("GIF extension ends early")
			}
			text = append(text, b[at+1:at+1+k]...)
			at += 1 + k
		}
		at++
		if label == 0xFE {
			out = append(out, string(text))
		}
	}
	return out, nil
}
