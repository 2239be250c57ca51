package properties

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shakedown/shakedown/sim"
)

// KVOp is one key-value operation as the linearizability checker sees it.
type KVOp struct {
	Key string
	// Write is true for a put of Value, false for a get that returned
	// Value ("" for a missing key).
	Write bool
	Value string
}

// KVDecode turns a recorded op into a key-value op. ok=false leaves the op
// out of the check (an op that is not a get or a put).
type KVDecode func(op sim.Op) (kv KVOp, ok bool, err error)

// DefaultKVDecode reads ops of kind "put" (also "set", "write") whose
// Input is "key=value", and of kind "get" (also "read") whose Input is the
// key and Output the value read ("" when the key is missing). Other kinds
// are left out.
func DefaultKVDecode(op sim.Op) (KVOp, bool, error) {
	switch op.Kind {
	case "put", "set", "write":
		k, v, found := strings.Cut(op.Input, "=")
		if !found {
			return KVOp{}, false, fmt.Errorf("op %d (%s): input %q is not key=value", op.ID, op.Kind, op.Input)
		}
		return KVOp{Key: k, Write: true, Value: v}, true, nil
	case "get", "read":
		return KVOp{Key: op.Input, Value: op.Output}, true, nil
	}
	return KVOp{}, false, nil
}

// Linearizable holds when the key-value ops of the run are linearizable:
// there is one order of them, consistent with real time, in which every
// get returns the latest put of its key (or "" before any). It uses
// porcupine, one partition per key.
//
// Outcomes are handled as a client knows them: a Failed op had no effect
// and is left out; an Unknown put may or may not have been applied, so it
// is kept with its return time at the end of time, so it may take effect
// at any moment after its call, or in effect never (linearized after every
// op that could observe it); an Unknown get read nothing and is left out.
type Linearizable struct {
	// Decode reads ops as key-value ops (default DefaultKVDecode).
	Decode KVDecode
	// Timeout bounds the search (default 10s); when it runs out the
	// result is "no evidence", not a pass.
	Timeout time.Duration
}

func (l Linearizable) Name() string { return "key-value history is linearizable" }

type kvInput struct {
	write      bool
	key, value string
}

func (l Linearizable) Check(h *sim.History) error {
	decode := l.Decode
	if decode == nil {
		decode = DefaultKVDecode
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	type decoded struct {
		op sim.Op
		kv KVOp
	}
	var all []decoded
	read := map[[2]string]bool{} // (key, value) pairs some successful get returned
	for _, op := range h.Ops {
		kv, ok, err := decode(op)
		if err != nil {
			return fmt.Errorf("properties: %s: %w", l.Name(), err)
		}
		if !ok || op.Outcome == sim.Failed || (op.Outcome == sim.Unknown && !kv.Write) {
			continue
		}
		if !kv.Write {
			read[[2]string{kv.Key, kv.Value}] = true
		}
		all = append(all, decoded{op, kv})
	}
	var ops []porcupine.Operation
	for _, d := range all {
		op, kv := d.op, d.kv
		ret := int64(op.End)
		if op.Outcome == sim.Unknown {
			// A put of unknown outcome whose value no get returned can
			// always be linearized last, where it changes nothing: leave
			// it out, which keeps the search small when a fault times
			// out many puts.
			if !read[[2]string{kv.Key, kv.Value}] {
				continue
			}
			ret = math.MaxInt64
		}
		id := len(ops)
		ops = append(ops, porcupine.Operation{
			ClientId: id, Call: int64(op.Start), Return: ret,
			Input: kvInput{write: kv.Write, key: kv.Key, value: kv.Value}, Output: kv.Value,
			Metadata: op.ID,
		})
	}
	if len(ops) == 0 {
		return &NoEvidence{Invariant: l.Name(), Reason: "no key-value op completed"}
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return &NoEvidence{Invariant: l.Name(), Reason: fmt.Sprintf("the check of %d ops did not finish within %v", len(ops), timeout)}
	}
	return Violations{illegal(l.Name(), ops, info)}
}

// illegal describes a non-linearizable history: the key whose partition
// failed and the op right after the longest linearizable prefix.
func illegal(name string, ops []porcupine.Operation, info porcupine.LinearizationInfo) Violation {
	v := Violation{Invariant: name, Window: "over the run", Got: "no linearization exists", Want: "a linearization"}
	parts := info.PartialLinearizationsOperations()
	for _, part := range parts {
		longest := 0
		var seq []porcupine.Operation
		for _, p := range part {
			if len(p) > longest {
				longest, seq = len(p), p
			}
		}
		if len(seq) == 0 {
			continue
		}
		in := seq[0].Input.(kvInput)
		var keyOps []porcupine.Operation
		for _, op := range ops {
			if op.Input.(kvInput).key == in.key {
				keyOps = append(keyOps, op)
			}
		}
		if len(seq) == len(keyOps) {
			continue // this key is fine
		}
		last := seq[len(seq)-1]
		v.Window = fmt.Sprintf("key %q", in.key)
		v.At = time.Duration(last.Call)
		v.Got = fmt.Sprintf("only %d of its %d ops linearize; the longest order ends with op %v (%s) and no remaining op can follow it",
			len(seq), len(keyOps), last.Metadata, describeKV(last.Input, last.Output))
		return v
	}
	return v
}

func describeKV(in, out any) string {
	i := in.(kvInput)
	if i.write {
		return fmt.Sprintf("put %s=%s", i.key, i.value)
	}
	return fmt.Sprintf("get %s -> %q", i.key, out)
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
		in := input.(kvInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string { return describeKV(input, output) },
}
