package properties

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
)

func TestLinearizableAppend(t *testing.T) {
	runCases(t, []invCase{
		{"appends then a read of them all", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=a", "", 0, 10, sim.OK), kv(2, "append", "x=b", "", 20, 30, sim.OK), kv(3, "append", "x=c", "", 40, 50, sim.OK),
			kv(4, "get", "x", "abc", 60, 70, sim.OK)), Held, nil},
		{"concurrent appends in either order", Linearizable{}, hist(1000, nil,
			kv(1, "append", "x=a", "", 0, 50, sim.OK), kv(2, "append", "x=b", "", 10, 40, sim.OK), kv(3, "get", "x", "ba", 60, 70, sim.OK)), Held, nil},
		{"a lost append", Linearizable{}, hist(1000, nil,
			kv(1, "append", "x=a", "", 0, 10, sim.OK), kv(2, "append", "x=b", "", 20, 30, sim.OK), kv(3, "get", "x", "a", 40, 50, sim.OK)), Broken,
			[]string{`key "x"`, "ends with op 2 (append x=b)"}},
		{"an append of unknown outcome, seen", Linearizable{}, hist(1000, nil,
			kv(1, "append", "x=a", "", 0, 10, sim.OK), kv(2, "append", "x=b", "", 20, 500, sim.Unknown), kv(3, "get", "x", "ab", 600, 610, sim.OK)), Held, nil},
		{"an append of unknown outcome, not seen", Linearizable{}, hist(1000, nil,
			kv(1, "append", "x=a", "", 0, 10, sim.OK), kv(2, "append", "x=b", "", 20, 500, sim.Unknown), kv(3, "get", "x", "a", 600, 610, sim.OK)), Held, nil},
	})
}

func TestLinearizableCAS(t *testing.T) {
	runCases(t, []invCase{
		{"a swap from the value held", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "true", 20, 30, sim.OK), kv(3, "get", "x", "2", 40, 50, sim.OK)), Held, nil},
		{"a refusal when the value differs", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=5->2", "false", 20, 30, sim.OK), kv(3, "get", "x", "1", 40, 50, sim.OK)), Held, nil},
		{"two swaps from the same value both succeed: lost update", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "true", 20, 30, sim.OK), kv(3, "cas", "x=1->3", "true", 40, 50, sim.OK)), Broken,
			[]string{`key "x"`, "ends with op 2 (cas x=1->2 -> true)"}},
		{"a swap refused although the value was held", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "false", 20, 30, sim.OK)), Broken, nil},
		{"a swap of unknown outcome may have applied", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "", 20, 500, sim.Unknown), kv(3, "get", "x", "2", 600, 610, sim.OK)), Held, nil},
		{"or not", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "", 20, 500, sim.Unknown), kv(3, "get", "x", "1", 600, 610, sim.OK)), Held, nil},
		{"a failed swap had no effect", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "cas", "x=1->2", "", 20, 30, sim.Failed), kv(3, "get", "x", "2", 40, 50, sim.OK)), Broken, nil},
		{"the broken key among others", Linearizable{}, hist(1000, nil,
			kv(1, "put", "y=1", "", 0, 10, sim.OK), kv(2, "get", "y", "1", 20, 30, sim.OK),
			kv(3, "put", "x=1", "", 0, 10, sim.OK), kv(4, "cas", "x=1->2", "true", 20, 30, sim.OK), kv(5, "cas", "x=1->3", "true", 40, 50, sim.OK),
			kv(6, "get", "z", "", 0, 10, sim.OK)), Broken,
			[]string{`key "x"`, "only 2 of its 3 ops linearize"}},
		{"a malformed cas", Linearizable{}, hist(1000, nil, kv(1, "cas", "x=1", "true", 0, 10, sim.OK)), Broken, []string{"is not key=old->new"}},
		{"a cas output that is not a boolean", Linearizable{}, hist(1000, nil, kv(1, "cas", "x=1->2", "yes", 0, 10, sim.OK)), Broken,
			[]string{`output "yes" is neither true nor false`}},
	})
}

// counterInput is the input of a user's model: a counter that ops
// increment by a number and read.
type counterInput struct {
	add     int
	read    bool
	unknown bool
}

var counterModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in, s := input.(counterInput), state.(int)
		if in.read {
			return in.unknown || output.(int) == s, s
		}
		return true, s + in.add
	},
	DescribeOperation: func(input, output any) string {
		if in := input.(counterInput); !in.read {
			return fmt.Sprintf("add %d", in.add)
		}
		return fmt.Sprintf("read -> %v", output)
	},
}

func counterOp(op sim.Op) (any, any, error) {
	switch op.Kind {
	case "add":
		n, err := strconv.Atoi(op.Input)
		return counterInput{add: n}, nil, err
	case "read":
		if op.Outcome != sim.OK {
			return counterInput{read: true, unknown: true}, 0, nil
		}
		n, err := strconv.Atoi(op.Output)
		return counterInput{read: true}, n, err
	}
	return nil, nil, fmt.Errorf("no counter op %q", op.Kind)
}

func TestLinearizableOwnModel(t *testing.T) {
	counter := Linearizable{Model: counterModel, Input: counterOp}
	runCases(t, []invCase{
		{"reads see every add", counter, hist(1000, nil,
			kv(1, "add", "2", "", 0, 10, sim.OK), kv(2, "add", "3", "", 20, 30, sim.OK), kv(3, "read", "", "5", 40, 50, sim.OK)), Held, nil},
		{"a lost add", counter, hist(1000, nil,
			kv(1, "add", "2", "", 0, 10, sim.OK), kv(2, "add", "3", "", 20, 30, sim.OK), kv(3, "read", "", "2", 40, 50, sim.OK)), Broken,
			[]string{"only 2 of its 3 ops linearize", "ends with op 2 (add 3)"}},
		{"an add of unknown outcome may have applied", counter, hist(1000, nil,
			kv(1, "add", "2", "", 0, 10, sim.OK), kv(2, "add", "3", "", 20, 500, sim.Unknown), kv(3, "read", "", "5", 600, 610, sim.OK)), Held, nil},
		{"an op its Input cannot read is an error", counter, hist(1000, nil, kv(1, "scan", "", "", 0, 10, sim.OK)), Broken,
			[]string{`op 1 (scan): no counter op "scan"`}},
		{"or left out by Kinds", Linearizable{Model: counterModel, Input: counterOp, Kinds: []string{"add", "read"}}, hist(1000, nil,
			kv(1, "scan", "", "", 0, 10, sim.OK), kv(2, "add", "1", "", 20, 30, sim.OK)), Held, nil},
		{"Model without Input", Linearizable{Model: counterModel}, hist(1000, nil), Broken, []string{"Model needs Input"}},
		{"Input without Model", Linearizable{Input: counterOp}, hist(1000, nil), Broken, []string{"Input needs a Model"}},
	})
}

// Before any run, the kinds of the workload the key-value model cannot
// read are an error; Kinds or a Decode of one's own say otherwise.
func TestLinearizableKindsBeforeTheRun(t *testing.T) {
	targets, samplers := []string{"cache"}, []string{}
	errs := checkInvariant(Linearizable{}, []string{"get", "put", "scan", "health"}, targets, samplers)
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], `no meaning for op kinds ["scan" "health"]`)
	require.Empty(t, checkInvariant(Linearizable{Kinds: []string{"get", "put"}}, []string{"get", "put", "scan"}, targets, samplers))
	require.Empty(t, checkInvariant(Linearizable{}, []string{"get", "set", "append", "cas", "read"}, targets, samplers))
	require.Len(t, checkInvariant(Linearizable{Kinds: []string{"get", "del"}}, []string{"get", "put"}, targets, samplers), 1,
		"a kind named that the workload lacks")
	require.Empty(t, checkInvariant(Linearizable{Model: counterModel, Input: counterOp}, []string{"add", "read"}, targets, samplers))
	require.Empty(t, checkInvariant(Linearizable{Timeout: time.Second}, []string{"get"}, targets, samplers))
}
