package sim

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
	"github.com/stretchr/testify/require"
)

func TestScheduleJSONRoundTrip(t *testing.T) {
	s := Schedule{Steps: []Step{
		{At: 1500 * time.Millisecond, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
		{At: 0, For: time.Nanosecond, Target: "cache", Fault: toxics.Latency{Delay: 200 * time.Millisecond, Jitter: 20 * time.Millisecond, Direction: toxics.Downstream}},
		{At: time.Hour + 3, For: 333333333, Target: "db", Fault: toxics.Crash{}},
		{At: 10 * time.Second, Target: "db", Fault: toxics.Restart{}},
		{At: 2 * time.Second, For: time.Second, Target: "cache", Fault: toxics.Slicer{AverageSize: 10, SizeVariation: 3, Delay: time.Millisecond}},
	}}
	data, err := json.Marshal(s)
	require.NoError(t, err)
	got, err := ParseSchedule(data)
	require.NoError(t, err)
	require.Equal(t, s, got)
	again, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(data), string(again))
}

func TestParseScheduleByHand(t *testing.T) {
	got, err := ParseSchedule([]byte(`{"steps":[
		{"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}},
		{"at":"4.5s","target":"db","fault":{"kind":"restart"}},
		{"at":"0s","for":"500ms","target":"cache","fault":{"kind":"latency","delay":"100ms","direction":"upstream"}}
	]}`))
	require.NoError(t, err)
	want := Schedule{Steps: []Step{
		{At: time.Second, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
		{At: 4500 * time.Millisecond, Target: "db", Fault: toxics.Restart{}},
		{At: 0, For: 500 * time.Millisecond, Target: "cache", Fault: toxics.Latency{Delay: 100 * time.Millisecond, Direction: toxics.Upstream}},
	}}
	require.Equal(t, want, got)
	require.Equal(t, "0: +1s for 2s db blackhole()\n1: +4.5s for 0s db restart()\n2: +0s for 500ms cache latency(100ms upstream)", got.String())
	require.Equal(t, 4500*time.Millisecond, got.Horizon())
	require.Equal(t, []int{2, 0, 1}, stepOrder(got.Sorted(), got))
}

// stepOrder returns, for each step of sorted, its index in orig.
func stepOrder(sorted, orig Schedule) []int {
	var out []int
	for _, s := range sorted.Steps {
		for i, o := range orig.Steps {
			if reflect.DeepEqual(s, o) {
				out = append(out, i)
			}
		}
	}
	return out
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not JSON", `{"steps":`, "sim: parse schedule: unexpected EOF"},
		{"unknown top field", `{"steps":[],"seed":1}`, `unknown field "seed"`},
		{"trailing data", `{"steps":[]} {}`, "trailing data"},
		{"bad duration names the step", `{"steps":[{"at":"1s","for":"2s","target":"db","fault":{"kind":"down"}},{"at":"1s","for":"2 s","target":"db","fault":{"kind":"down"}}]}`,
			`step 1: field "for": "2 s" is not a duration`},
		{"missing at", `{"steps":[{"for":"2s","target":"db","fault":{"kind":"down"}}]}`, `step 0: field "at" is required`},
		{"missing for", `{"steps":[{"at":"2s","target":"db","fault":{"kind":"down"}}]}`, `step 0: field "for" is required`},
		{"missing target", `{"steps":[{"at":"2s","for":"1s","fault":{"kind":"down"}}]}`, `step 0: field "target" is required`},
		{"missing fault", `{"steps":[{"at":"2s","for":"1s","target":"db"}]}`, `step 0: field "fault" is required`},
		{"null fault", `{"steps":[{"at":"2s","for":"1s","target":"db","fault":null}]}`, `step 0: field "fault" is required`},
		{"unknown step field", `{"steps":[{"at":"2s","for":"1s","target":"db","fault":{"kind":"down"},"x":1}]}`, `step 0: json: unknown field "x"`},
		{"bad fault", `{"steps":[{"at":"0s","for":"1s","target":"db","fault":{"kind":"down"}},{"at":"0s","for":"1s","target":"db","fault":{"kind":"latency"}},{}]}`,
			`step 1: toxics: decode latency: field "delay" is required`},
		{"step not an object", `{"steps":[1]}`, "step 0: json: cannot unmarshal number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchedule([]byte(tc.in))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	targets := []Target{&stubTarget{name: "db", nodes: true}, &stubTarget{name: "cache"}}
	step := func(at, dur int, target string, f toxics.Fault) Step {
		return Step{At: ms(at), For: ms(dur), Target: target, Fault: f}
	}
	for _, tc := range []struct {
		name  string
		steps []Step
		want  map[int]string // step index -> part of its error
	}{
		{"valid", []Step{
			step(0, 1000, "db", toxics.Latency{Delay: ms(5)}),
			step(500, 1000, "db", toxics.Bandwidth{Rate: 0}),                               // other kind: may overlap
			step(0, 1000, "cache", toxics.Blackhole{}),                                     // other target
			step(1000, 500, "cache", toxics.Blackhole{}),                                   // touches, does not overlap
			step(0, 400, "db", toxics.Latency{Delay: ms(5), Direction: toxics.Downstream}), // overlaps step 0 (both ways)
		}, map[int]string{4: "overlaps step 0"}},
		{"latency one way each", []Step{
			step(0, 1000, "db", toxics.Latency{Delay: ms(5), Direction: toxics.Upstream}),
			step(0, 1000, "db", toxics.Latency{Delay: ms(5), Direction: toxics.Downstream}),
		}, nil},
		{"unknown target", []Step{step(0, 1, "db", toxics.Down{}), step(0, 1, "queue", toxics.Down{})},
			map[int]string{1: `unknown target "queue" (targets: db, cache)`}},
		{"negative offset", []Step{step(-1, 1, "db", toxics.Down{})}, map[int]string{0: "negative offset -1ms"}},
		{"negative duration", []Step{step(1, -5, "db", toxics.Down{})}, map[int]string{0: "negative duration -5ms"}},
		{"overflow", []Step{{At: 1 << 62, For: 1 << 62, Target: "db", Fault: toxics.Down{}}}, map[int]string{0: "overflows"}},
		{"node fault on a link", []Step{step(0, 1, "cache", toxics.Crash{})},
			map[int]string{0: `target "cache" does not support the node fault crash`}},
		{"nil fault", []Step{{Target: "db"}}, map[int]string{0: "fault is nil"}},
		{"invalid fault", []Step{step(0, 1, "db", toxics.Slicer{})}, map[int]string{0: "average_size"}},
		{"two node faults", []Step{step(0, 1000, "db", toxics.Pause{}), step(999, 10, "db", toxics.Stop{})},
			map[int]string{1: "overlaps step 0"}},
		{"restart inside a crash", []Step{step(0, 1000, "db", toxics.Crash{}), step(1000, 0, "db", toxics.Restart{})},
			map[int]string{1: "overlaps step 0"}},
		{"down and reset", []Step{step(0, 10, "cache", toxics.Reset{}), step(5, 10, "cache", toxics.Down{})},
			map[int]string{1: "overlaps step 0"}},
		{"every problem at once", []Step{step(-1, 1, "nope", toxics.Down{}), step(0, -1, "db", toxics.Down{})},
			map[int]string{0: "negative offset", 1: "negative duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Schedule{Steps: tc.steps}.Validate(targets)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			msgs := map[int][]string{}
			for _, e := range unjoin(err) {
				var se *StepError
				require.True(t, errors.As(e, &se), "not a StepError: %v", e)
				require.Contains(t, se.Error(), "step "+strconv.Itoa(se.Index)+" (")
				msgs[se.Index] = append(msgs[se.Index], se.Error())
			}
			for i, want := range tc.want {
				require.Contains(t, strings.Join(msgs[i], "\n"), want, "errors of step %d", i)
			}
		})
	}
}

func TestValidateTargets(t *testing.T) {
	err := Schedule{}.Validate([]Target{&stubTarget{name: "db"}, nil, &stubTarget{name: "db"}})
	require.ErrorContains(t, err, "target 1 is nil")
	require.ErrorContains(t, err, `target 2: another target is also named "db"`)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte(`{"steps":[{"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}}]}`))
	f.Add([]byte(`{"steps":[{"at":"0s","target":"db","fault":{"kind":"restart"}},{"at":"1.5s","for":"1ns","target":"x","fault":{"kind":"latency","delay":"1ms","jitter":"1ms","direction":"downstream"}}]}`))
	f.Add([]byte(`{"steps":[{"at":"-1s","for":"9223372036s","target":"db","fault":{"kind":"slicer","average_size":1}}]}`))
	f.Add([]byte(`{"steps":null}`))
	f.Add([]byte(`{}`))
	targets := []Target{&stubTarget{name: "db", nodes: true}, &stubTarget{name: "x"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchedule(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "sim: parse schedule: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		// Whatever parses validates without panicking, prints, and
		// round-trips exactly.
		_ = s.Validate(targets)
		_ = s.String()
		_ = s.Sorted()
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal %#v: %v", s, err)
		}
		back, err := ParseSchedule(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("round trip changed the schedule:\n%#v\n%#v", s, back)
		}
	})
}

func TestRestartTakesNoTime(t *testing.T) {
	s := Schedule{Steps: []Step{
		{At: time.Second, For: time.Hour, Target: "db", Fault: toxics.Restart{}},
		{At: 2 * time.Second, For: time.Second, Target: "db", Fault: toxics.Crash{}},
	}}
	require.Equal(t, time.Second, s.Steps[0].End())
	require.Equal(t, 3*time.Second, s.Horizon())
	require.NoError(t, s.Validate([]Target{&stubTarget{name: "db", nodes: true}}), "the restart's For is ignored, so it does not overlap the crash")
}
