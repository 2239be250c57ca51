package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Line keeps one line a service wrote (a line of a container's output),
// read at time at. A JSON object is parsed: its time ("time", "ts",
// "timestamp" in RFC 3339), level ("level", "lvl", "severity": DEBUG,
// INFO, WARN or WARNING, ERROR, FATAL; slog's "WARN+2" too), message
// ("msg", "message") and trace ID (see [Capture]) fill the Record, other
// fields become attributes (nested objects flattened with "."). Any other
// line is kept as its text, at Info unless a logfmt "level=" says
// otherwise, with the trace ID of a logfmt "trace_id=" or
// "traceparent=" when it has one: slog's TextHandler and most logfmt
// loggers are understood that far.
func (c *Capture) Line(service string, at time.Time, line string) {
	c.Add(ParseLine(service, at, line))
}

// ParseLine is the Record that [Capture.Line] keeps.
func ParseLine(service string, at time.Time, line string) Record {
	line = strings.TrimRight(line, "\r\n")
	r := Record{Time: at, Service: service, Level: slog.LevelInfo}
	if t := strings.TrimSpace(line); strings.HasPrefix(t, "{") && parseJSON(&r, t) {
		return r
	}
	r.Msg = line
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch normalKey(k) {
		case "level", "lvl", "severity":
			if l, ok := parseLevel(v); ok {
				r.Level = l
			}
		default:
			if r.TraceID == "" {
				r.TraceID = traceOf(k, v)
			}
		}
	}
	return r
}

func parseJSON(r *Record, line string) bool {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return false
	}
	var attrs []slog.Attr
	for _, k := range sortedKeys(m) {
		v := m[k]
		s, isString := v.(string)
		switch normalKey(k) {
		case "time", "ts", "timestamp":
			if t, err := time.Parse(time.RFC3339Nano, s); isString && err == nil {
				r.Time = t
				continue
			}
		case "level", "lvl", "severity":
			if l, ok := parseLevel(s); isString && ok {
				r.Level = l
				continue
			}
		case "msg", "message":
			if isString && r.Msg == "" {
				r.Msg = s
				continue
			}
		}
		attrs = jsonAttrs(attrs, k, v)
	}
	r.Attrs = pickTrace(attrs, &r.TraceID)
	return true
}

func jsonAttrs(attrs []slog.Attr, key string, v any) []slog.Attr {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			attrs = jsonAttrs(attrs, key+"."+k, v[k])
		}
		return attrs
	case string:
		return append(attrs, slog.String(key, v))
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return append(attrs, slog.Int64(key, i))
		}
		f, _ := v.Float64()
		return append(attrs, slog.Float64(key, f))
	case bool:
		return append(attrs, slog.Bool(key, v))
	case nil:
		return append(attrs, slog.String(key, "null"))
	default:
		b, _ := json.Marshal(v)
		return append(attrs, slog.String(key, string(b)))
	}
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// parseLevel reads a level name, in any case, with slog's "+n"/"-n"
// offsets ("WARN+2").
func parseLevel(s string) (slog.Level, bool) {
	name, off := s, 0
	if i := strings.IndexAny(s, "+-"); i > 0 {
		n, err := strconv.Atoi(s[i:])
		if err != nil {
			return 0, false
		}
		name, off = s[:i], n
	}
	var l slog.Level
	switch strings.ToUpper(name) {
	case "TRACE", "DEBUG":
		l = slog.LevelDebug
	case "INFO", "NOTICE":
		l = slog.LevelInfo
	case "WARN", "WARNING":
		l = slog.LevelWarn
	case "ERROR", "ERR", "FATAL", "PANIC", "CRITICAL":
		l = slog.LevelError
	default:
		return 0, false
	}
	return l + slog.Level(off), true
}

// ReadFunc reads the lines a service wrote after since (all of them for
// the zero time) and calls line for each, with the time it was written.
// harness.Container.ReadLogs is one.
type ReadFunc func(ctx context.Context, since time.Time, line func(at time.Time, text string)) error

// Poll returns a sampler that, each time the runner reads it, reads the
// lines service wrote since the last poll with read and keeps them
// ([Capture.Line]), then returns the counts of [Capture.Sampler]. With a
// container of package harness:
//
//	api := env.Container("api", spec)
//	world.Samplers = append(world.Samplers, capture.Poll("api", api.ReadLogs))
//
// The runner reads samplers at the start, every SampleEvery, at the end
// and until the quiet reading, so the lines a run caused are kept before
// its invariants are judged. Where the last poll stopped is kept in the
// Capture, so a World built for each run reads each line once.
func (c *Capture) Poll(service string, read ReadFunc) sim.Sampler {
	var mu sync.Mutex // one poll at a time per sampler
	return sim.SamplerFunc("log", func(ctx context.Context) (map[string]float64, error) {
		if read == nil {
			return nil, fmt.Errorf("logs: Poll(%q): read is nil", service)
		}
		mu.Lock()
		defer mu.Unlock()
		c.mu.Lock()
		since := c.polled[service]
		c.mu.Unlock()
		last := since
		var batch []Record
		err := read(ctx, since, func(at time.Time, text string) {
			if !at.After(since) && !since.IsZero() {
				return // read again: the API's since is inclusive
			}
			if at.After(last) {
				last = at
			}
			batch = append(batch, ParseLine(service, at, text))
		})
		c.mu.Lock()
		for _, r := range batch {
			c.addLocked(r)
		}
		if c.polled == nil {
			c.polled = map[string]time.Time{}
		}
		c.polled[service] = last
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("logs: read the lines of %s: %w", service, err)
		}
		return c.counts(service), nil
	})
}
