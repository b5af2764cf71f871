package app

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The window's training updates (status line, progress bar, loss chart,
// preview) each repaint the whole window. With a GPU that costs a
// millisecond or two; with software rendering (Xvfb, many VMs and remote
// desktops) about 50 ms of CPU, measured here, which on a 2-core laptop
// comes straight out of training. So the window paces itself: it measures
// what its updates cost the UI threads and spaces them so that they take
// at most uiBudget of the machine's CPU, between uiMinPeriod and
// uiMaxPeriod apart.
const (
	uiBudget      = 0.01
	uiMinPeriod   = 250 * time.Millisecond
	uiMaxPeriod   = 5 * time.Second
	uiFixedPeriod = time.Second // where the UI threads' CPU time cannot be read
	userHZ        = 100         // the unit of /proc's CPU times on Linux
)

// uiPacer decides how long the window waits between two training updates.
type uiPacer struct {
	period  time.Duration
	fixed   bool
	cpus    int
	updates int       // updates since the last measurement
	since   time.Time // when the last measurement was taken
	ticks   int64     // the UI threads' CPU time then
	read    func() (ui, all int64)
}

// newUIPacer starts at uiFixedPeriod until it has measured; a fixed
// period > 0 turns pacing off.
func newUIPacer(fixed time.Duration) *uiPacer {
	p := &uiPacer{period: uiFixedPeriod, cpus: runtime.NumCPU(), read: threadCPU}
	if fixed > 0 {
		p.period, p.fixed = fixed, true
		return p
	}
	p.ticks, _ = p.read()
	if p.ticks < 0 {
		p.period, p.fixed = uiFixedPeriod, true
	}
	p.since = time.Now()
	return p
}

// restart begins a new measurement (a new run), keeping the period learnt.
func (p *uiPacer) restart() {
	if p.fixed {
		return
	}
	p.updates, p.since = 0, time.Now()
	if p.ticks, _ = p.read(); p.ticks < 0 {
		p.period, p.fixed = uiFixedPeriod, true
	}
}

// applied records one update and, every few updates, re-measures their
// cost and sets the period.
func (p *uiPacer) applied() {
	if p.fixed {
		return
	}
	p.updates++
	if p.updates < 4 || time.Since(p.since) < 2*time.Second {
		return
	}
	ticks, _ := p.read()
	if ticks < 0 {
		p.period, p.fixed = uiFixedPeriod, true
		return
	}
	cost := time.Duration(ticks-p.ticks) * time.Second / userHZ / time.Duration(p.updates)
	p.period = paceFor(cost, p.cpus)
	p.updates, p.ticks, p.since = 0, ticks, time.Now()
}

// paceFor is the period at which updates costing cost of CPU each take
// uiBudget of cpus cores.
func paceFor(cost time.Duration, cpus int) time.Duration {
	d := time.Duration(float64(cost) / (uiBudget * float64(max(1, cpus))))
	return min(uiMaxPeriod, max(uiMinPeriod, d))
}

// threadCPU returns the CPU time (in USER_HZ ticks) of the UI threads — the
// main thread, where Fyne runs the UI and paints, and any llvmpipe software
// renderer threads — and of the whole process, from /proc (-1, -1 where
// there is none).
func threadCPU() (ui, all int64) {
	pid := strconv.Itoa(os.Getpid())
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1, -1
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		open, close := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || close < open || close+2 > len(st) {
			continue
		}
		f := strings.Fields(st[close+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		all += u + k
		if t.Name() == pid || strings.HasPrefix(st[open+1:close], "llvmpipe") {
			ui += u + k
		}
	}
	return ui, all
}
