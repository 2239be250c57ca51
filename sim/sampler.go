package sim

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"time"
)

// DefaultSampleEvery is the sampling interval when [Settings.SampleEvery]
// is zero.
const DefaultSampleEvery = 100 * time.Millisecond

// Sampler reads values worth putting on the run's timeline next to the
// ops, such as a connection pool's in-use count or the number of
// goroutines. The runner polls every sampler every [Settings.SampleEvery],
// once at the start and once when the load stops, from one goroutine; then,
// once the ops have drained, until two readings agree (see
// [Settings.Settle]).
type Sampler interface {
	// Name prefixes the names of the sampler's values in the History:
	// value "in_use" of sampler "pg" is recorded as "pg.in_use", and the
	// value with the empty key as "pg".
	Name() string
	// Sample returns the current values. An error is logged and the
	// reading skipped.
	Sample(ctx context.Context) (map[string]float64, error)
}

// OpLogger is a [Sampler] that also knows what the service logged for
// each op, such as the sampler of sim/logs.Capture. At the end of a run
// the runner asks it for the lines of the run's ops and keeps them in
// [History.OpLogs], so every report of that run (and of a check's
// failure) can show them.
type OpLogger interface {
	Sampler
	// OpLogs returns lines by op ID for the run h recorded.
	OpLogs(h *History) map[uint64][]string
}

// gatherOpLogs fills h.OpLogs from the samplers that are OpLoggers. A
// panic in one is logged and its lines dropped: the run's verdict does
// not depend on them.
func gatherOpLogs(h *History, samplers []Sampler, log *slog.Logger) {
	for _, s := range samplers {
		l, ok := s.(OpLogger)
		if !ok {
			continue
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					log.Warn("sim: op logs of sampler panicked", "sampler", s.Name(), "panic", v)
				}
			}()
			for id, lines := range l.OpLogs(h) {
				if h.OpLogs == nil {
					h.OpLogs = map[uint64][]string{}
				}
				h.OpLogs[id] = append(h.OpLogs[id], lines...)
			}
		}()
	}
}

// SamplerFunc returns a Sampler with the given name that calls f.
func SamplerFunc(name string, f func(ctx context.Context) (map[string]float64, error)) Sampler {
	return funcSampler{name: name, f: f}
}

type funcSampler struct {
	name string
	f    func(context.Context) (map[string]float64, error)
}

func (s funcSampler) Name() string { return s.name }
func (s funcSampler) Sample(ctx context.Context) (map[string]float64, error) {
	if s.f == nil {
		return nil, fmt.Errorf("sim: sampler %q has a nil function", s.name)
	}
	return s.f(ctx)
}

// Goroutines returns a Sampler of the number of goroutines in the process,
// recorded as "goroutines". A count that keeps climbing through a run is
// the usual sign of leaked connections or stuck requests.
func Goroutines() Sampler {
	return SamplerFunc("goroutines", func(context.Context) (map[string]float64, error) {
		return map[string]float64{"": float64(runtime.NumGoroutine())}, nil
	})
}

// Counter returns a sampler of a cumulative count the caller keeps (a
// fake's request count, a wrapping driver's query count), recorded under
// name.
func Counter(name string, count func() int64) Sampler {
	return SamplerFunc(name, func(context.Context) (map[string]float64, error) {
		if count == nil {
			return nil, fmt.Errorf("sim: Counter %q: count is nil", name)
		}
		return map[string]float64{"": float64(count())}, nil
	})
}

// readSamplers reads every sampler once, recording its values at offset
// at as <sampler>.<key> (<sampler> for the empty key). A sampler that
// fails or panics is logged and skipped, and counted in missed.
func readSamplers(ctx context.Context, samplers []Sampler, at time.Duration, log *slog.Logger) (out []Sample, missed int) {
	for i, s := range samplers {
		var vals map[string]float64
		var name string
		err := protect(fmt.Sprintf("sampler %d", i), func() error {
			name = s.Name()
			var e error
			vals, e = s.Sample(ctx)
			return e
		})
		if err != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "sim: sampler failed", slog.Int("sampler", i), slog.String("name", name), slog.Any("err", err))
			missed++
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			n := name
			if k != "" {
				n += "." + k
			}
			out = append(out, Sample{At: at, Name: n, Value: vals[k]})
		}
	}
	return out, missed
}

// sampleLoop polls the samplers until stop closes, then once more. missed
// counts the readings that failed.
func sampleLoop(ctx context.Context, samplers []Sampler, every time.Duration, start time.Time, stop <-chan struct{}, log *slog.Logger) (out []Sample, missed int) {
	read := func() {
		s, m := readSamplers(ctx, samplers, time.Since(start), log)
		out, missed = append(out, s...), missed+m
	}
	read()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			read()
		case <-stop:
			read()
			return out, missed
		}
	}
}

// settleEvery is how often settle reads the samplers.
const settleEvery = 10 * time.Millisecond

// settle reads the samplers every settleEvery until two readings in a row
// agree or limit (zero: [DefaultSettle]; negative: one reading at once) is
// over, and returns the last reading, placed at offset at, with the
// number of samplers that failed in it.
func settle(ctx context.Context, samplers []Sampler, at, limit time.Duration, log *slog.Logger) (last []Sample, missed int) {
	limit = cmp.Or(limit, DefaultSettle)
	start := time.Now()
	last, missed = readSamplers(ctx, samplers, at, log)
	if limit < 0 {
		return last, missed
	}
	tick := time.NewTicker(settleEvery)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case <-ctx.Done():
			return last, missed
		case <-tick.C:
		}
		next, m := readSamplers(ctx, samplers, at, log)
		if slices.Equal(next, last) {
			break
		}
		last, missed = next, m
	}
	return last, missed
}
