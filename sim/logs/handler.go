package logs

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Handler returns a slog.Handler that keeps every record it handles as
// coming from service, with its trace ID, then passes it to next (nil:
// keep only). Wrap the service's own handler with it where the service
// is built:
//
//	capture := &logs.Capture{}
//	svc := checkout.New(checkout.Config{Logger: slog.New(capture.Handler("checkout", slog.NewJSONHandler(os.Stderr, nil)))})
//
// A record is kept when next is enabled for its level (every record with
// a nil next), so the capture sees what the service really emits.
func (c *Capture) Handler(service string, next slog.Handler) slog.Handler {
	return &handler{c: c, service: service, next: next}
}

type handler struct {
	c       *Capture
	service string
	next    slog.Handler
	attrs   []slog.Attr // from WithAttrs, flattened
	group   string      // the open groups, "a.b."
	trace   string      // a trace ID among attrs
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next == nil || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	rec := Record{Time: r.Time, Service: h.service, Level: r.Level, Msg: r.Message, TraceID: h.trace}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	attrs := make([]slog.Attr, len(h.attrs), len(h.attrs)+r.NumAttrs())
	copy(attrs, h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = flatten(attrs, h.group, a)
		return true
	})
	rec.Attrs = pickTrace(attrs, &rec.TraceID)
	if rec.TraceID == "" && h.c.FromContext != nil {
		rec.TraceID = h.c.FromContext(ctx)
	}
	h.c.Add(rec)
	if h.next == nil {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = slices.Clip(h.attrs)
	for _, a := range as {
		h2.attrs = flatten(h2.attrs, h.group, a)
	}
	h2.attrs = pickTrace(h2.attrs, &h2.trace)
	if h.next != nil {
		h2.next = h.next.WithAttrs(as)
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	if h.next != nil {
		h2.next = h.next.WithGroup(name)
	}
	return &h2
}

// flatten appends a to attrs, resolved, with groups spelled out as
// prefixes of their members' keys. Empty attributes are dropped, as slog
// handlers do.
func flatten(attrs []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, m := range a.Value.Group() {
			attrs = flatten(attrs, p, m)
		}
		return attrs
	}
	if a.Equal(slog.Attr{}) {
		return attrs
	}
	a.Key = prefix + a.Key
	return append(attrs, a)
}

// pickTrace moves the first attribute that carries a trace ID out of
// attrs into *id, replacing what *id held: a record's own trace ID wins
// over its logger's.
func pickTrace(attrs []slog.Attr, id *string) []slog.Attr {
	for i, a := range attrs {
		if a.Value.Kind() != slog.KindString {
			continue
		}
		if t := traceOf(a.Key, a.Value.String()); t != "" {
			*id = t
			return slices.Delete(attrs, i, i+1)
		}
	}
	return attrs
}
