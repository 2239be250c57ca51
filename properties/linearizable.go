package properties

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shakedown/shakedown/sim"
)

// KVOp is one key-value operation as the linearizability checker sees it.
type KVOp struct {
	// Op is what the op does: "get" read Value ("" for a missing key),
	// "put" wrote Value, "append" appended Value to the key's value, and
	// "cas" wrote Value if the key held Old, reporting in Swapped whether
	// it did.
	Op         string
	Key, Value string
	Old        string
	Swapped    bool
}

// KVDecode turns a recorded op into a key-value op, or says why it cannot.
type KVDecode func(op sim.Op) (KVOp, error)

// kvKinds are the op kinds DefaultKVDecode reads, and what each does.
var kvKinds = map[string]string{
	"get": "get", "read": "get",
	"put": "put", "set": "put", "write": "put",
	"append": "append",
	"cas":    "cas",
}

// DefaultKVDecode reads ops by kind:
//
//   - "put" (also "set", "write") and "append": Input "key=value";
//   - "get" (also "read"): Input the key, Output the value read ("" when the
//     key is missing);
//   - "cas": Input "key=old->new", Output "true" when it swapped and
//     "false" when the key did not hold old.
//
// Any other kind is an error.
func DefaultKVDecode(op sim.Op) (KVOp, error) {
	what, ok := kvKinds[op.Kind]
	if !ok {
		return KVOp{}, fmt.Errorf("op %d: kind %q has no key-value model (known: %s)", op.ID, op.Kind, strings.Join(slices.Sorted(maps.Keys(kvKinds)), ", "))
	}
	if what == "get" {
		return KVOp{Op: what, Key: op.Input, Value: op.Output}, nil
	}
	k, v, found := strings.Cut(op.Input, "=")
	if !found {
		return KVOp{}, fmt.Errorf("op %d (%s): input %q is not key=value", op.ID, op.Kind, op.Input)
	}
	if what != "cas" {
		return KVOp{Op: what, Key: k, Value: v}, nil
	}
	old, v, found := strings.Cut(v, "->")
	if !found {
		return KVOp{}, fmt.Errorf("op %d (cas): input %q is not key=old->new", op.ID, op.Input)
	}
	kv := KVOp{Op: what, Key: k, Old: old, Value: v}
	switch op.Output {
	case "true":
		kv.Swapped = true
	case "false":
	default:
		if op.Outcome == sim.OK {
			return KVOp{}, fmt.Errorf("op %d (cas): output %q is neither true nor false", op.ID, op.Output)
		}
	}
	return kv, nil
}

// Linearizable holds when the ops of the run are linearizable: there is one
// order of them, consistent with real time, in which each is legal for the
// model. It uses porcupine.
//
// The model is a key-value store by default, one partition per key: a get
// returns the latest put of its key, or "" before any, or the values
// appended since, and a compare-and-set swaps only when the key holds its
// old value (see [DefaultKVDecode] for the kinds it reads). A porcupine
// model of one's own goes in Model, with Input to read its ops.
//
// Every op of the kinds judged must be one the model interprets: an op it
// cannot read is an error (before any run, when the World's kinds are
// known), never left out, since leaving out a write makes a linearizable
// history look broken. Kinds leaves out the kinds that are not the model's.
//
// Outcomes are handled as a client knows them: a Failed op had no effect
// and is left out; an op of Unknown outcome (and one whose outcome the
// framework missed) may or may not have been applied, so a write is kept
// with its return time at the end of time (it may take effect at any
// moment after its call, or in effect never: linearized after every op
// that could observe it) and a get, which read nothing, is left out.
type Linearizable struct {
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
	// Decode reads ops as key-value ops (default DefaultKVDecode).
	Decode KVDecode
	// Model is a porcupine model of one's own, instead of the key-value
	// one; Input is then required.
	Model porcupine.Model
	// Input turns an op into the input and output of Model. It is given
	// the ops of outcome Unknown too (and the missed ones): for those the
	// output is not known, so return one that Model's Step accepts
	// whatever the state, or an error to say the op cannot be judged.
	Input func(op sim.Op) (input, output any, err error)
	// Timeout bounds the search (default 10s); when it runs out the
	// result is "no evidence", not a pass.
	Timeout time.Duration
}

func (l Linearizable) custom() bool { return l.Model.Step != nil }

func (l Linearizable) Name() string {
	what := "key-value history"
	if l.custom() {
		what = "history"
	}
	return fmt.Sprintf("%s is linearizable%s", what, kindsSuffix(l.Kinds))
}

func (l Linearizable) validate() error {
	model := ""
	switch {
	case l.custom() && l.Input == nil:
		model = "Model needs Input to read the ops"
	case l.custom() && l.Decode != nil:
		model = "Decode reads ops for the key-value model; with a Model of one's own, Input does"
	case !l.custom() && l.Input != nil:
		model = "Input needs a Model (its Step is nil)"
	}
	return invalid(l.Name(), model, nonNegative("Timeout", l.Timeout), kindsOK("Kinds", l.Kinds))
}

func (l Linearizable) kinds() []string { return l.Kinds }

// checkKinds says which of the workload's kinds the default key-value
// model cannot read; with Decode or Model of one's own, it cannot know.
func (l Linearizable) checkKinds(workload []string) error {
	if l.custom() || l.Decode != nil {
		return nil
	}
	var unknown []string
	for _, k := range workload {
		if _, ok := kvKinds[k]; !ok && kindMatch(l.Kinds, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("properties: %s: the key-value model has no meaning for op kinds %q: name the kinds to judge in Kinds, or read them with Decode", l.Name(), unknown)
}

// kvInput is the input of kvModel.
type kvInput struct {
	op, key, value, old string
	swapped             bool
	unknown             bool // a cas whose outcome is not known
}

func (l Linearizable) Check(h *sim.History) error {
	if err := l.validate(); err != nil {
		return err
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var ops []porcupine.Operation
	var err error
	model := l.Model
	if l.custom() {
		ops, err = l.customOps(h)
	} else {
		model = kvModel
		ops, err = l.kvOps(h)
	}
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return &NoEvidence{Invariant: l.Name(), Reason: "no op completed" + kindsText(l.Kinds)}
	}
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return &NoEvidence{Invariant: l.Name(), Reason: fmt.Sprintf("the check of %d ops did not finish within %v", len(ops), timeout)}
	}
	return Violations{illegal(l.Name(), model, ops, info)}
}

// uncertain reports whether op's effect is unknown: its outcome is, or the
// framework missed it.
func uncertain(op sim.Op) bool { return op.Outcome == sim.Unknown || !judgedOp(op) }

func (l Linearizable) customOps(h *sim.History) ([]porcupine.Operation, error) {
	var ops []porcupine.Operation
	for _, op := range h.Ops {
		if !kindMatch(l.Kinds, op.Kind) || (op.Outcome == sim.Failed && judgedOp(op)) {
			continue
		}
		in, out, err := l.Input(op)
		if err != nil {
			return nil, fmt.Errorf("properties: %s: op %d (%s): %w", l.Name(), op.ID, op.Kind, err)
		}
		ret := int64(op.End)
		if uncertain(op) {
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{ClientId: len(ops), Call: int64(op.Start), Return: ret, Input: in, Output: out, Metadata: op.ID})
	}
	return ops, nil
}

func (l Linearizable) kvOps(h *sim.History) ([]porcupine.Operation, error) {
	decode := l.Decode
	if decode == nil {
		decode = DefaultKVDecode
	}
	type decoded struct {
		op sim.Op
		kv KVOp
	}
	var all []decoded
	var reads []KVOp // what the successful gets and cas returned
	for _, op := range h.Ops {
		if !kindMatch(l.Kinds, op.Kind) {
			continue
		}
		kv, err := decode(op)
		if err != nil {
			return nil, fmt.Errorf("properties: %s: %w", l.Name(), err)
		}
		if _, ok := kvKinds[kv.Op]; !ok || kvKinds[kv.Op] != kv.Op {
			return nil, fmt.Errorf("properties: %s: op %d (%s) decoded to %q, not one of get, put, append, cas", l.Name(), op.ID, op.Kind, kv.Op)
		}
		failed := op.Outcome == sim.Failed && judgedOp(op)
		if failed || (uncertain(op) && kv.Op == "get") {
			continue
		}
		if !uncertain(op) {
			reads = append(reads, kv)
		}
		all = append(all, decoded{op, kv})
	}
	// A write of unknown effect that nothing could have observed can
	// always be linearized last, where it changes nothing: leave it out,
	// which keeps the search small when a fault times out many writes.
	observed := func(w KVOp) bool {
		return slices.ContainsFunc(reads, func(r KVOp) bool {
			if r.Key != w.Key {
				return false
			}
			switch {
			case r.Op == "get" && w.Op == "append":
				return strings.Contains(r.Value, w.Value)
			case r.Op == "get":
				return r.Value == w.Value
			case r.Op == "cas":
				return r.Old == w.Value || (w.Op == "append" && strings.Contains(r.Old, w.Value))
			}
			return false
		})
	}
	var ops []porcupine.Operation
	for _, d := range all {
		op, kv := d.op, d.kv
		ret := int64(op.End)
		if uncertain(op) {
			if !observed(kv) {
				continue
			}
			ret = math.MaxInt64
		}
		in := kvInput{op: kv.Op, key: kv.Key, value: kv.Value, old: kv.Old, swapped: kv.Swapped, unknown: uncertain(op)}
		ops = append(ops, porcupine.Operation{ClientId: len(ops), Call: int64(op.Start), Return: ret, Input: in, Output: kv.Value, Metadata: op.ID})
	}
	return ops, nil
}

// illegal describes a non-linearizable history: the partition that failed
// and the op right after its longest linearizable prefix.
func illegal(name string, model porcupine.Model, ops []porcupine.Operation, info porcupine.LinearizationInfo) Violation {
	v := Violation{Invariant: name, Window: "over the run", Got: "no linearization exists", Want: "a linearization"}
	describe := func(op porcupine.Operation) string {
		if model.DescribeOperation != nil {
			return model.DescribeOperation(op.Input, op.Output)
		}
		return fmt.Sprintf("%v -> %v", op.Input, op.Output)
	}
	sizes := []int{len(ops)}
	if model.Partition != nil {
		sizes = sizes[:0]
		for _, p := range model.Partition(ops) {
			sizes = append(sizes, len(p))
		}
	}
	for i, part := range info.PartialLinearizationsOperations() {
		longest := 0
		var seq []porcupine.Operation
		for _, p := range part {
			if len(p) > longest {
				longest, seq = len(p), p
			}
		}
		n := 0
		if i < len(sizes) {
			n = sizes[i]
		}
		if len(seq) == 0 || len(seq) == n {
			continue // this partition is fine
		}
		last := seq[len(seq)-1]
		v.Window = "over the run"
		if in, ok := last.Input.(kvInput); ok {
			v.Window = fmt.Sprintf("key %q", in.key)
		}
		v.At = time.Duration(last.Call)
		v.Got = fmt.Sprintf("only %d of its %d ops linearize; the longest order ends with op %v (%s) and no remaining op can follow it",
			len(seq), n, last.Metadata, describe(last))
		return v
	}
	return v
}

func describeKV(in, out any) string {
	i := in.(kvInput)
	switch i.op {
	case "get":
		return fmt.Sprintf("get %s -> %q", i.key, out)
	case "cas":
		res := fmt.Sprint(i.swapped)
		if i.unknown {
			res = "unknown"
		}
		return fmt.Sprintf("cas %s=%s->%s -> %s", i.key, i.old, i.value, res)
	}
	return fmt.Sprintf("%s %s=%s", i.op, i.key, i.value)
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, s := input.(kvInput), state.(string)
		switch in.op {
		case "get":
			return output.(string) == s, s
		case "put":
			return true, in.value
		case "append":
			return true, s + in.value
		}
		// cas: a swap needs the old value; a refusal, another one. One of
		// unknown outcome did whichever the state allowed.
		if s == in.old {
			return in.swapped || in.unknown, in.value
		}
		return !in.swapped || in.unknown, s
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string { return describeKV(input, output) },
}
