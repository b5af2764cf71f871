package app

import (
	"runtime"
	"testing"
	"time"
)

func TestPaceFor(t *testing.T) {
	for _, c := range []struct {
		cost time.Duration
		cpus int
		want time.Duration
	}{
		{50 * time.Millisecond, 2, 2500 * time.Millisecond}, // software rendering on 2 cores: 1 % of 2 cores
		{50 * time.Millisecond, 8, 625 * time.Millisecond},
		{2 * time.Millisecond, 2, uiMinPeriod}, // a GPU desktop
		{time.Second, 1, uiMaxPeriod},
		{0, 0, uiMinPeriod},
	} {
		if got := paceFor(c.cost, c.cpus); got != c.want {
			t.Errorf("paceFor(%v, %d) = %v, want %v", c.cost, c.cpus, got, c.want)
		}
	}
}

func TestUIPacer(t *testing.T) {
	if p := newUIPacer(300 * time.Millisecond); p.period != 300*time.Millisecond {
		t.Errorf("a fixed period became %v", p.period)
	}
	p := newUIPacer(0)
	if runtime.GOOS != "linux" {
		if p.period != uiFixedPeriod {
			t.Errorf("without /proc the period is %v, want %v", p.period, uiFixedPeriod)
		}
		return
	}
	if ui, all := threadCPU(); ui < 0 || all < ui {
		t.Fatalf("threadCPU() = %d, %d", ui, all)
	}
	// Updates that cost the UI threads 5 ticks (50 ms) each on 2 cores
	// are spaced 50 ms / (1 % of 2 cores) apart.
	var ticks int64
	p = &uiPacer{period: uiMinPeriod, cpus: 2, since: time.Now().Add(-3 * time.Second),
		read: func() (int64, int64) { return ticks, ticks }}
	for i := 0; i < 4; i++ {
		ticks += 5
		p.applied()
	}
	if p.updates != 0 || p.period != 2500*time.Millisecond {
		t.Errorf("after 4 updates of 50 ms: %d updates pending, period %v", p.updates, p.period)
	}
	// Cheap updates bring it back down, but not below the floor.
	p.since = time.Now().Add(-3 * time.Second)
	for i := 0; i < 4; i++ {
		p.applied()
	}
	if p.period != uiMinPeriod {
		t.Errorf("after free updates the period is %v", p.period)
	}
}
