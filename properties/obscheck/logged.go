package obscheck

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/toxics"
)

// DefaultWithin is how long after an op ended its record may come, when
// an invariant's Within is zero.
const DefaultWithin = time.Second

// FailuresLogged holds when every op that failed (outcome Failed or
// Unknown) left at least one record at Warn or above carrying its trace
// ID, written between the op's intended start and Within after its end:
// a failure the client saw is visible in the service's logs and can be
// tied to the request. Ops the framework missed (sim.Missed: not started
// because the load was stalled, or cut off by the run's end) are not the
// service's failures and are not judged. It is not judged (no evidence)
// when no op failed.
type FailuresLogged struct {
	// Logs holds the service's records. Required.
	Logs *logs.Capture
	// Service limits the records that count to one service's (default:
	// any service's).
	Service string
	// Within is how long after the op's end its record may come (default
	// DefaultWithin): a service logs a failure when its handler returns,
	// which can be after a client that gave up has moved on.
	Within time.Duration
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (f FailuresLogged) Name() string {
	by := ""
	if f.Service != "" {
		by = " by " + f.Service
	}
	return fmt.Sprintf("every failed op logged at WARN+%s with its trace ID within %v%s", by, cmp.Or(f.Within, DefaultWithin), kinds(f.Kinds))
}

func (f FailuresLogged) Check(h *sim.History) error {
	if f.Logs == nil {
		return fmt.Errorf("obscheck: %s: Logs is nil", f.Name())
	}
	if f.Within < 0 {
		return fmt.Errorf("obscheck: %s: Within = %v is negative", f.Name(), f.Within)
	}
	within := cmp.Or(f.Within, DefaultWithin)
	var vs properties.Violations
	failed := 0
	for _, op := range h.Ops {
		if op.Outcome == sim.OK || op.Outcome == sim.Missed || !kindIn(op.Kind, f.Kinds) {
			continue
		}
		failed++
		var seen []logs.Record
		ok := false
		for _, r := range f.Logs.ForOp(h, op, within) {
			if f.Service != "" && r.Service != f.Service {
				continue
			}
			if r.Level >= slog.LevelWarn {
				ok = true
				break
			}
			seen = append(seen, r)
		}
		if ok {
			continue
		}
		got := "no record with its trace ID " + logs.TraceID(h, op.ID)
		if len(seen) > 0 {
			got = fmt.Sprintf("%d records with its trace ID, none at WARN or above (first: %s)", len(seen), seen[0].Msg)
		}
		vs = append(vs, properties.Violation{
			Invariant: f.Name(), Window: opLabel(op), At: op.End,
			Got: got, Want: fmt.Sprintf("a record at WARN or above with trace ID %s by %v", logs.TraceID(h, op.ID), op.End+within),
			Excess: "1 failure unseen",
		})
	}
	if failed == 0 {
		return &properties.NoEvidence{Invariant: f.Name(), Reason: "no op failed"}
	}
	if len(vs) > 0 {
		for i := range vs {
			vs[i].Excess = fmt.Sprintf("%d of %d failed ops unseen", len(vs), failed)
		}
		return vs
	}
	return nil
}

// TraceReaches holds when the trace ID of every op that succeeded reached
// the dependency it calls: a record of Dependency carries the op's trace
// ID. The service under test passes the trace on to what it calls, so a
// request can be followed across the boundary. Requests that reached the
// dependency during the run without any trace ID are counted in the
// violation. It is not judged when no op of Kinds succeeded.
//
// The records of Dependency's requests come from where the requests are
// seen: for real, the harness Link in front of the dependency, which
// reads the HTTP/1.x request heads it delivers
// (link.OnTraceparent(capture.Traceparents("payments"))); in simulation,
// a logs.Capture.Middleware in front of the sim.FakeHTTP's handler.
//
// An op that overlaps a corrupt fault (on any target) is not judged: the
// fault may have altered its trace ID in flight, which says nothing of
// the service's propagation.
type TraceReaches struct {
	// Logs holds the dependency's requests. Required.
	Logs *logs.Capture
	// Dependency is the service name the requests were kept under.
	// Required.
	Dependency string
	// Kinds are the kinds of op that call the dependency (default all).
	Kinds []string
}

func (tr TraceReaches) Name() string {
	return fmt.Sprintf("trace ID of every successful op reaches %s%s", tr.Dependency, kinds(tr.Kinds))
}

func (tr TraceReaches) Check(h *sim.History) error {
	if tr.Logs == nil || tr.Dependency == "" {
		return fmt.Errorf("obscheck: %s: Logs and Dependency are required", tr.Name())
	}
	var vs properties.Violations
	judged, corrupted := 0, 0
	for _, op := range h.Ops {
		if op.Outcome != sim.OK || !kindIn(op.Kind, tr.Kinds) {
			continue
		}
		if duringCorruption(h, op) {
			corrupted++
			continue
		}
		judged++
		// The dependency was called before the op ended.
		if slices.ContainsFunc(tr.Logs.ForOp(h, op, 0), func(r logs.Record) bool { return r.Service == tr.Dependency }) {
			continue
		}
		vs = append(vs, properties.Violation{
			Invariant: tr.Name(), Window: opLabel(op), At: op.End,
			Got:  "no request with its trace ID " + logs.TraceID(h, op.ID) + " at " + tr.Dependency,
			Want: "the op's trace ID in a request " + tr.Dependency + " received",
		})
	}
	if judged == 0 {
		reason := "no op" + kinds(tr.Kinds) + " succeeded"
		if corrupted > 0 {
			reason = fmt.Sprintf("every op%s that succeeded (%d) overlapped a corrupt fault", kinds(tr.Kinds), corrupted)
		}
		return &properties.NoEvidence{Invariant: tr.Name(), Reason: reason}
	}
	if len(vs) == 0 {
		return nil
	}
	untraced := 0
	for _, r := range tr.Logs.Records() {
		if r.Service == tr.Dependency && r.TraceID == "" && inRun(h, r.Time) {
			untraced++
		}
	}
	for i := range vs {
		vs[i].Excess = fmt.Sprintf("%d of %d successful ops untraced; %d requests reached %s without a trace ID", len(vs), judged, untraced, tr.Dependency)
	}
	return vs
}

// duringCorruption reports whether op overlaps an applied corrupt fault.
func duringCorruption(h *sim.History, op sim.Op) bool {
	for _, f := range h.Faults {
		if !f.Applied() || f.Fault.Fault == nil || f.Fault.Fault.Kind() != toxics.KindCorrupt {
			continue
		}
		end := f.End
		if end == 0 { // never reverted: until the run's end
			end = h.Duration
		}
		// Inclusive: an op of no duration at a fault's edge (simulated
		// time) sent its bytes while the fault held.
		if op.Start <= end && op.End >= f.Start {
			return true
		}
	}
	return false
}

// inRun reports whether a record's time falls in the run h recorded.
func inRun(h *sim.History, at time.Time) bool {
	return h.Began.IsZero() || (!at.Before(h.Began) && !at.After(h.Began.Add(h.Duration)))
}

func kindIn(kind string, ks []string) bool { return len(ks) == 0 || slices.Contains(ks, kind) }

func kinds(ks []string) string {
	if len(ks) == 0 {
		return ""
	}
	return " (" + strings.Join(ks, ", ") + ")"
}

func opLabel(op sim.Op) string {
	s := fmt.Sprintf("op %d (%s", op.ID, op.Kind)
	if op.Err != "" {
		s += ": " + op.Err
	}
	return s + ")"
}
