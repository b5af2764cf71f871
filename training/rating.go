package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The kinds of human-evaluation round.
const (
	RoundRate     = "rate"      // each sample rated 1–5
	RoundPair     = "pair"      // two models' samples side by side: which is better
	RoundHYPE     = "hype"      // real or fake, unlimited time (HYPE∞)
	RoundHYPETime = "hype_time" // real or fake, timed exposures on a staircase (HYPE_time)
)

// RatingsDir is the folder of a project's human-evaluation rounds.
const RatingsDir = "ratings"

// Trial is one judgement of a round.
type Trial struct {
	// Sample names the generated image shown (the first of a pair), nil
	// for a real one; Other is a pair's second image (model B).
	Sample *Latent `json:"sample,omitempty"`
	Other  *Latent `json:"other,omitempty"`
	// RealIndex is the data set image shown in a quiz (-1 when generated).
	RealIndex int `json:"real_index"`
	// Left tells, for a pair, whether model A's image was on the left.
	Left bool `json:"left,omitempty"`
	// Score is a rating (1–5); for a pair 1 when A was picked, 2 for B;
	// for a quiz 1 when the user said "real", 0 for "fake".
	Score      int   `json:"score"`
	ExposureMS int   `json:"exposure_ms,omitempty"` // a timed quiz's exposure
	Millis     int64 `json:"millis"`                // time to answer
}

// Round is one human-evaluation round as saved in the project.
type Round struct {
	Kind    string        `json:"kind"`
	Started time.Time     `json:"started"`
	Model   string        `json:"model"`             // checkpoint of the samples (model A)
	ModelB  string        `json:"model_b,omitempty"` // a pair round's model B
	Data    string        `json:"data,omitempty"`    // a quiz's real images
	Seed    uint64        `json:"seed"`
	Trials  []Trial       `json:"trials"`
	Summary *RoundSummary `json:"summary,omitempty"`
}

// RoundSummary is a round's result with a 95 % bootstrap interval.
type RoundSummary struct {
	// Score: the mean rating (rate), model A's share of wins (pair), the
	// share of wrong answers (HYPE∞ and HYPE_time), in [0, 1] or 1–5.
	Score, Lo, Hi float64
	// ThresholdMS is HYPE_time's perceptual threshold: the mean exposure at
	// the staircase's reversals (all exposures when it never reversed).
	ThresholdMS float64 `json:",omitempty"`
	Trials      int
}

// Correct tells whether a quiz answer was right.
func (t Trial) Correct() bool { return (t.Score == 1) == (t.RealIndex >= 0) }

// Summarise scores the round: the statistic of its kind and a 95 %
// bootstrap interval over its trials (2,000 resamples, seeded by the
// round's seed).
func (r *Round) Summarise() (*RoundSummary, error) {
	if len(r.Trials) == 0 {
		return nil, errors.New("a round without answers")
	}
	var stat func([]Trial) float64
	switch r.Kind {
	case RoundRate:
		stat = func(ts []Trial) float64 {
			s := 0.0
			for _, t := range ts {
				s += float64(t.Score)
			}
			return s / float64(len(ts))
		}
	case RoundPair:
		stat = func(ts []Trial) float64 {
			s := 0.0
			for _, t := range ts {
				if t.Score == 1 {
					s++
				}
			}
			return s / float64(len(ts))
		}
	case RoundHYPE, RoundHYPETime:
		stat = func(ts []Trial) float64 {
			s := 0.0
			for _, t := range ts {
				if !t.Correct() {
					s++
				}
			}
			return s / float64(len(ts))
		}
	default:
		return nil, fmt.Errorf("unknown round kind %q", r.Kind)
	}
	sum := &RoundSummary{Score: stat(r.Trials), Trials: len(r.Trials)}
	sum.Lo, sum.Hi = Bootstrap(r.Trials, stat, 2000, r.Seed)
	if r.Kind == RoundHYPETime {
		sum.ThresholdMS = StaircaseThreshold(r.Trials)
	}
	return sum, nil
}

// Bootstrap is the 95 % percentile interval of stat over resamples of
// items (with replacement).
func Bootstrap[T any](items []T, stat func([]T) float64, resamples int, seed uint64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	vals := make([]float64, resamples)
	buf := make([]T, len(items))
	for k := range vals {
		for i := range buf {
			buf[i] = items[rng.IntN(len(items))]
		}
		vals[k] = stat(buf)
	}
	slices.Sort(vals)
	at := func(q float64) float64 { return vals[min(len(vals)-1, int(math.Floor(q*float64(len(vals)))))] }
	return at(0.025), at(0.975)
}

// Staircase are HYPE_time's exposures, longest first.
var Staircase = []int{500, 400, 300, 200, 100}

// NextExposure is the staircase's next exposure after one at ms: one level
// shorter after a correct answer, one longer after a wrong one.
func NextExposure(ms int, correct bool) int {
	i := slices.Index(Staircase, ms)
	if i < 0 {
		return Staircase[0]
	}
	if correct {
		return Staircase[min(len(Staircase)-1, i+1)]
	}
	return Staircase[max(0, i-1)]
}

// StaircaseThreshold is the mean exposure at the reversals of a timed
// quiz's staircase (where the exposure's direction of change flips), or
// the mean exposure of all trials when it never reversed.
func StaircaseThreshold(ts []Trial) float64 {
	var rev []int
	dir := 0
	for i := 1; i < len(ts); i++ {
		d := ts[i].ExposureMS - ts[i-1].ExposureMS
		if d == 0 {
			continue
		}
		s := 1
		if d < 0 {
			s = -1
		}
		if dir != 0 && s != dir {
			rev = append(rev, ts[i-1].ExposureMS)
		}
		dir = s
	}
	if len(rev) == 0 {
		for _, t := range ts {
			rev = append(rev, t.ExposureMS)
		}
	}
	s := 0.0
	for _, v := range rev {
		s += float64(v)
	}
	return s / float64(len(rev))
}

// SaveRound summarises r and writes it into dir as a new file (an
// existing round is never overwritten) and returns its path.
func SaveRound(dir string, r *Round) (string, error) {
	sum, err := r.Summarise()
	if err != nil {
		return "", err
	}
	r.Summary = sum
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save round: %w", err)
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return "", err
	}
	base := fmt.Sprintf("round-%s-%s", r.Started.UTC().Format("20060102-150405"), r.Kind)
	for k := 0; k < 1000; k++ {
		name := base + ".json"
		if k > 0 {
			name = fmt.Sprintf("%s-%d.json", base, k+1)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("save round: %w", err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			os.Remove(path)
			return "", fmt.Errorf("save round: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return "", fmt.Errorf("save round: %w", err)
		}
		return path, f.Close()
	}
	return "", errors.New("save round: too many rounds with the same time")
}

// Rounds reads the rounds saved in dir, oldest first (none when dir does
// not exist); files that do not parse are skipped.
func Rounds(dir string) ([]*Round, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Round
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "round-") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var r Round
		if json.Unmarshal(b, &r) == nil && r.Summary != nil {
			out = append(out, &r)
		}
	}
	slices.SortFunc(out, func(a, b *Round) int { return a.Started.Compare(b.Started) })
	return out, nil
}

// Describe is a one-line account of the round's result.
func (r *Round) Describe() string {
	s := r.Summary
	if s == nil {
		return r.Kind + ": not scored"
	}
	model := filepath.Base(r.Model)
	switch r.Kind {
	case RoundRate:
		return fmt.Sprintf("Ratings of %s: mean %.2f of 5 [%.2f, %.2f], %d samples", model, s.Score, s.Lo, s.Hi, s.Trials)
	case RoundPair:
		return fmt.Sprintf("%s preferred over %s in %.0f %% [%.0f, %.0f] of %d pairs", model, filepath.Base(r.ModelB), 100*s.Score, 100*s.Lo, 100*s.Hi, s.Trials)
	case RoundHYPE:
		return fmt.Sprintf("HYPE∞ of %s: %.1f %% errors [%.1f, %.1f] in %d trials (50 %% = chance)", model, 100*s.Score, 100*s.Lo, 100*s.Hi, s.Trials)
	case RoundHYPETime:
		return fmt.Sprintf("HYPE_time of %s: threshold %.0f ms, %.1f %% errors [%.1f, %.1f] in %d trials", model, s.ThresholdMS, 100*s.Score, 100*s.Lo, 100*s.Hi, s.Trials)
	}
	return r.Kind
}
