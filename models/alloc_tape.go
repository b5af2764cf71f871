package models

import (
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// reuseTape is a Gorgonia tape machine whose Reset rewinds the program
// without dropping the values of the previous run.
//
// Gorgonia's tapeMachine.Reset sets the program counter to 0 and clears
// every CPU register, so each run allocates every node's value afresh:
// its Alloc instructions (before each BLAS call and each Repeat) find an
// empty register and make a new tensor, and every elementwise op finds no
// preallocated value and takes the allocating Do path. For the seed GAN
// that is about 44 MB a step. The machine itself reuses whatever a
// register holds: Alloc keeps a value of the right dtype and shape, and an
// op whose register already holds a value writes into it (UsePreallocDo).
// Rewinding the program counter alone therefore makes the second and later
// runs write into the first run's buffers. Every node has its own register
// (only in-place ops share their input's one), so a register holds its own
// node's value from the last run and nothing a run still needs: the
// arguments (weights, inputs, constants) are loaded again by each run and
// no op writes into an argument's register.
//
// The program counter is unexported, so it is reached by reflection once,
// when the machine is made. Where that is not possible (another Gorgonia
// version, a CUDA build) newReuseTape returns the plain machine, whose
// Reset clears the registers as before.
type reuseTape struct {
	G.VM
	pc *int
}

// reuseTapes switches newReuseTape to plain machines when false, for the
// tests that compare both.
var reuseTapes = true

// newReuseTape compiles g into a tape machine that reuses its values
// across runs (see reuseTape).
func newReuseTape(g *G.ExprGraph, opts ...G.VMOpt) G.VM {
	m := G.NewTapeMachine(g, opts...)
	if !reuseTapes {
		return m
	}
	pc := tapePC(m)
	if pc == nil {
		return m
	}
	return &reuseTape{VM: m, pc: pc}
}

// Reset implements G.VM: it rewinds to the first instruction and keeps the
// registers' values for the next run to write into.
func (t *reuseTape) Reset() { *t.pc = 0 }

// tapePC returns a pointer to the program counter of Gorgonia's
// tapeMachine, or nil when m is not the machine this was written for
// (gorgonia.org/gorgonia v0.9.18, CPU build).
func tapePC(m G.VM) *int {
	if G.CUDA {
		return nil // Reset also returns GPU memory there
	}
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	e := v.Elem()
	t := e.Type()
	if t.Kind() != reflect.Struct || t.PkgPath() != "gorgonia.org/gorgonia" || t.Name() != "tapeMachine" {
		return nil
	}
	if f, ok := t.FieldByName("cpumem"); !ok || f.Type.Kind() != reflect.Slice {
		return nil
	}
	f := e.FieldByName("pc")
	if !f.IsValid() || f.Kind() != reflect.Int || !f.CanAddr() {
		return nil
	}
	return (*int)(unsafe.Pointer(f.UnsafeAddr()))
}
