package main

import (
	"debug/pe"
	"encoding/binary"
	"os"
	"testing"
)

// Resource types of a Windows executable's .rsrc section.
const (
	rtIcon      = 3
	rtGroupIcon = 14
	rtVersion   = 16
)

// TestWindowsExecutable checks the exe of make windows (its path in
// GENSTUDIO_WINDOWS_EXE; make windows-check sets it): a PE32+ x86-64
// executable for the GUI subsystem (no console window) whose resources
// hold the icon and the version.
func TestWindowsExecutable(t *testing.T) {
	path := os.Getenv("GENSTUDIO_WINDOWS_EXE")
	if path == "" {
		t.Skip("no GENSTUDIO_WINDOWS_EXE (make windows-check builds and checks it)")
	}
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("machine %#x, want x86-64", f.Machine)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		t.Fatalf("optional header %T: not PE32+", f.OptionalHeader)
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Errorf("subsystem %d, want the GUI (%d)", oh.Subsystem, pe.IMAGE_SUBSYSTEM_WINDOWS_GUI)
	}
	types := resourceTypes(t, f)
	for _, want := range []struct {
		id   uint32
		name string
	}{{rtIcon, "icon"}, {rtGroupIcon, "icon group"}, {rtVersion, "version"}} {
		if types[want.id] == 0 {
			t.Errorf("no %s resource (types %v)", want.name, types)
		}
	}
	t.Logf("resource types (ID: count): %v", types)
	if types[rtIcon] < 2 {
		t.Errorf("%d icon image(s); want the icon at several sizes", types[rtIcon])
	}
}

// resourceTypes reads the .rsrc section's root directory: for each resource
// type ID, the number of resources under it.
func resourceTypes(t *testing.T, f *pe.File) map[uint32]int {
	t.Helper()
	s := f.Section(".rsrc")
	if s == nil {
		t.Fatal("no .rsrc section")
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	entries := func(off uint32) [][2]uint32 {
		if int(off)+16 > len(b) {
			t.Fatalf("resource directory at %d outside the section", off)
		}
		n := int(le.Uint16(b[off+12:])) + int(le.Uint16(b[off+14:]))
		var out [][2]uint32
		for i := 0; i < n; i++ {
			e := int(off) + 16 + 8*i
			if e+8 > len(b) {
				t.Fatal("truncated resource directory")
			}
			out = append(out, [2]uint32{le.Uint32(b[e:]), le.Uint32(b[e+4:])})
		}
		return out
	}
	types := map[uint32]int{}
	for _, e := range entries(0) {
		if e[0]&0x80000000 != 0 || e[1]&0x80000000 == 0 {
			continue // a named type, or a leaf at the top
		}
		types[e[0]] = len(entries(e[1] &^ 0x80000000))
	}
	return types
}
