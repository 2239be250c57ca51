package toxics

import (
	"fmt"
	"strings"
)

// KindPartition is the one network fault kind: a cut of the network
// between the dependencies themselves. It is neither a link fault nor a
// node fault: it acts on no single dependency but on the network they
// share, and the target that takes it stands for that network (harness's
// Env.Network, sim's Network.Partitions).
const KindPartition Kind = "partition"

var networkKinds = []Kind{KindPartition}

// NetworkKinds returns every network fault kind.
func NetworkKinds() []Kind { return append([]Kind(nil), networkKinds...) }

// IsNetwork reports whether k is a network fault kind.
func (k Kind) IsNetwork() bool { return contains(networkKinds, k) }

// NetworkFault acts on the network between dependencies.
type NetworkFault interface {
	Fault
	networkFault()
}

// Partition cuts the network between groups of dependencies, named as
// the target that takes the fault names them: members of different
// groups cannot reach each other while it holds, members of one group
// still can, and a dependency in no group reaches every group. The
// clients of the test (the host) keep reaching every dependency: a
// partition cuts the dependencies from each other, not from the test.
// Reverting it heals the network.
//
// Its JSON form lists the groups:
//
//	{"kind":"partition","groups":[["db"],["cache","queue"]]}
type Partition struct {
	Groups [][]string
}

func (Partition) Kind() Kind { return KindPartition }

// Validate needs at least two groups, none empty, no empty name, and no
// name in two groups (or twice in one).
func (f Partition) Validate() error {
	if len(f.Groups) < 2 {
		return &FieldError{Kind: KindPartition, Field: "groups", Value: len(f.Groups), Reason: "needs at least two groups"}
	}
	seen := map[string]int{}
	for i, g := range f.Groups {
		if len(g) == 0 {
			return &FieldError{Kind: KindPartition, Field: fmt.Sprintf("groups[%d]", i), Value: "[]", Reason: "is empty"}
		}
		for j, name := range g {
			field := fmt.Sprintf("groups[%d][%d]", i, j)
			if name == "" {
				return &FieldError{Kind: KindPartition, Field: field, Value: `""`, Reason: "is empty"}
			}
			if at, dup := seen[name]; dup {
				return &FieldError{Kind: KindPartition, Field: field, Value: fmt.Sprintf("%q", name), Reason: fmt.Sprintf("is already in groups[%d]", at)}
			}
			seen[name] = i
		}
	}
	return nil
}

// String lists the groups: "partition(db | cache,queue)".
func (f Partition) String() string {
	gs := make([]string, len(f.Groups))
	for i, g := range f.Groups {
		gs[i] = strings.Join(g, ",")
	}
	return call(KindPartition, strings.Join(gs, " | "))
}

func (Partition) fault()        {}
func (Partition) networkFault() {}

// clone copies the groups, so a decoded or encoded fault shares no slice
// with its source.
func (f Partition) clone() Partition {
	gs := make([][]string, len(f.Groups))
	for i, g := range f.Groups {
		gs[i] = append([]string(nil), g...)
	}
	return Partition{Groups: gs}
}
