package models

import (
	"fmt"
	"math"
)

// The learning-rate schedules (the "lr_schedule" setting of every model).
const (
	// LRConstant keeps the configured rate (after the warm-up, if any).
	LRConstant = "constant"
	// LRWarmup ramps the rate up linearly over the warm-up steps, then
	// keeps it.
	LRWarmup = "warmup"
	// LRCosine warms up, then follows half a cosine down to 0 at the run's
	// last step.
	LRCosine = "cosine"
	// LRLinear warms up, then falls linearly to 0 at the run's last step.
	LRLinear = "linear"
)

// defaultWarmupShare is the warm-up of the "warmup" schedule when no
// warm-up length is set: this share of the run.
const defaultWarmupShare = 0.05

var (
	fieldLRSchedule = Field{Key: "lr_schedule", Label: "LR schedule", Flag: "lr-schedule", Kind: KindChoice,
		Help:    "constant; warmup = a linear ramp first; cosine and linear also fall to 0 at the last step",
		Choices: []string{LRConstant, LRWarmup, LRCosine, LRLinear}}
	fieldLRWarmup = Field{Key: "lr_warmup", Label: "LR warm-up", Flag: "lr-warmup", Kind: KindInt, Lo: 0, Hi: 1e7,
		Help: "steps of the linear ramp from 0 (0: none; the warmup schedule then ramps over 5 % of the run)"}
	fieldClip = Field{Key: "clip", Label: "Gradient clipping", Flag: "clip", Kind: KindFloat, Lo: 0, Hi: 1e6,
		Help: "largest L2 norm of each network's gradient; larger ones are scaled down to it, as torch's clip_grad_norm_ (0 = off)"}
)

// LRSchedule is a model's learning-rate schedule: the factor of its
// configured learning rates at each step. Every model's config embeds it,
// so the schedule is part of the config a checkpoint keeps.
type LRSchedule struct {
	Schedule string `json:"lr_schedule"` // LRConstant, LRWarmup, LRCosine or LRLinear ("" = constant)
	Warmup   int    `json:"lr_warmup"`   // steps of the linear ramp from 0 (0 = none)
	// Clip is the largest L2 norm of each optimizer's gradient (0 = no
	// clipping). It lives here because, like the schedule, every model's
	// optimizers take it.
	Clip float64 `json:"clip"`
}

// Validate checks the schedule's settings by their spec fields.
func (s LRSchedule) Validate() error {
	if s.Schedule != "" {
		if err := fieldLRSchedule.Check(s.Schedule); err != nil {
			return err
		}
	}
	if err := fieldLRWarmup.Check(s.Warmup); err != nil {
		return err
	}
	return fieldClip.Check(s.Clip)
}

// Factor is the schedule's factor at step (0-based) of a run of total
// steps. With total 0 (a run until stopped) nothing decays; the warm-up
// still applies.
func (s LRSchedule) Factor(step, total int) float64 {
	warm := s.Warmup
	if s.Schedule == LRWarmup && warm == 0 {
		warm = int(math.Ceil(defaultWarmupShare * float64(total)))
	}
	if step < warm {
		return float64(step+1) / float64(warm)
	}
	if total <= warm || (s.Schedule != LRCosine && s.Schedule != LRLinear) {
		return 1
	}
	p := float64(step-warm) / float64(total-warm) // 0 at the first decayed step
	if p > 1 {
		p = 1
	}
	if s.Schedule == LRCosine {
		return 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return 1 - p
}

// String describes the schedule for logs ("cosine, warm-up 500").
func (s LRSchedule) String() string {
	name := s.Schedule
	if name == "" {
		name = LRConstant
	}
	if s.Warmup > 0 {
		return fmt.Sprintf("%s, warm-up %d", name, s.Warmup)
	}
	return name
}

// Scheduled is a model whose learning rates follow an LRSchedule: the
// trainer sets the factor before each step.
type Scheduled interface {
	// LRSchedule is the model's schedule, from its config.
	LRSchedule() LRSchedule
	// ScaleLR sets every learning rate to f times its configured value.
	ScaleLR(f float64)
}

// ApplyLRSchedule sets m's learning rates for step (0-based) of a run of
// total steps, when m is Scheduled, and returns the factor (1 otherwise).
func ApplyLRSchedule(m Model, step, total int) float64 {
	s, ok := m.(Scheduled)
	if !ok {
		return 1
	}
	f := s.LRSchedule().Factor(step, total)
	s.ScaleLR(f)
	return f
}

// apply sets each optimizer's rate to f times its initial one, and its
// gradient clipping to the schedule's.
func (s LRSchedule) apply(f float64, opts ...*Adam) {
	for _, o := range opts {
		if o != nil {
			o.LR = o.baseLR * f
			o.Clip = s.Clip
		}
	}
}

// constantLR is every default config's schedule.
var constantLR = LRSchedule{Schedule: LRConstant}
