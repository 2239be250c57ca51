package sim

import (
	"cmp"
	"slices"
	"sync"
)

// chunkOps is how many ops the largest chunk of a Recorder holds (the
// first holds 64, and each next one twice as many). Chunks are never
// copied once allocated, so recording costs no more than storing the op.
const chunkOps = 4096

// Recorder collects ops from many goroutines at once. Its zero value is
// ready to use. The [Run] function records through one; use a Recorder
// directly only for ops issued outside a run's [Workload].
type Recorder struct {
	mu     sync.Mutex
	chunks [][]Op
	n      int
}

// Record stores a copy of op. It is safe for concurrent use and costs well
// under a microsecond (BenchmarkRecord).
func (r *Recorder) Record(op Op) {
	r.mu.Lock()
	last := len(r.chunks) - 1
	if last < 0 || len(r.chunks[last]) == cap(r.chunks[last]) {
		// The first chunks are small, so a run of a hundred ops does not
		// clear and free a chunk of thousands.
		r.chunks = append(r.chunks, make([]Op, 0, min(chunkOps, 64<<len(r.chunks))))
		last++
	}
	r.chunks[last] = append(r.chunks[last], op)
	r.n++
	r.mu.Unlock()
}

// Len returns how many ops were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Ops returns a copy of the recorded ops ordered by ID (ops with the same
// ID keep the order they were recorded in).
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	ops := make([]Op, 0, r.n)
	for _, c := range r.chunks {
		ops = append(ops, c...)
	}
	r.mu.Unlock()
	byID := func(a, b Op) int { return cmp.Compare(a.ID, b.ID) }
	if slices.IsSortedFunc(ops, byID) {
		return ops
	}
	// A stable sort moves the ops (large structs) many times over:
	// sorting their indexes by ID, then by the order recorded, gives
	// the same order, and following the permutation's cycles moves
	// each op once.
	idx := make([]int, len(ops))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int { return cmp.Or(cmp.Compare(ops[i].ID, ops[j].ID), cmp.Compare(i, j)) })
	for start := range idx {
		if idx[start] == start {
			continue
		}
		held := ops[start]
		k := start
		for {
			j := idx[k]
			idx[k] = k
			if j == start {
				ops[k] = held
				break
			}
			ops[k] = ops[j]
			k = j
		}
	}
	return ops
}
