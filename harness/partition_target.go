package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shakedown/shakedown/toxics"
)

// NetworkTarget is the name schedules give the Env's network, the target
// of partitions ([Env.Network]). Package sim names its simulated network
// the same, so a schedule found in simulation replays here.
const NetworkTarget = "network"

// Network returns the Env's Docker network as a target of schedules,
// named [NetworkTarget]. It takes [toxics.Partition] faults, whose groups
// name the Env's container dependencies: Apply calls [Env.Partition] and
// its revert heals the partition. Pass it to the Runner beside the
// dependencies to schedule partitions between them.
//
// A partition cuts the containers from each other only: the test reaches
// every dependency through its Link during the partition as before (a
// Link moved to a container's new published port keeps its address).
func (e *Env) Network() *Network { return &Network{e: e} }

// Network is the Env's Docker network as the target of partitions; see
// [Env.Network].
type Network struct {
	e *Env
}

// Name returns [NetworkTarget].
func (n *Network) Name() string { return NetworkTarget }

// Supports reports whether k is [toxics.KindPartition].
func (n *Network) Supports(k toxics.Kind) bool { return k == toxics.KindPartition }

// Members returns the names a partition's groups may hold: the Env's
// container dependencies, sorted. Local processes and existing addresses
// share the host's loopback and cannot be partitioned.
func (n *Network) Members() []string {
	e := n.e
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for _, m := range e.members {
		if _, ok := dockerNodeOf(m); ok {
			names = append(names, m.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Apply starts the partition f. A fault that is not a valid partition,
// names that are not container dependencies of the Env (the error names
// each), or a partition already in force is an error and changes nothing.
func (n *Network) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if n == nil || n.e == nil {
		return nil, errors.New("harness: network: Apply on a nil *Network")
	}
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("harness: network: %w", err)
	}
	p, ok := f.(toxics.Partition)
	if !ok {
		return nil, fmt.Errorf("harness: network: unsupported fault %s (the network takes partitions only)", f)
	}
	members := n.Members()
	var unknown []string
	for _, g := range p.Groups {
		for _, name := range g {
			if !slices.Contains(members, name) {
				unknown = append(unknown, fmt.Sprintf("%q", name))
			}
		}
	}
	if len(unknown) > 0 {
		have := "none"
		if len(members) > 0 {
			have = strings.Join(members, ", ")
		}
		return nil, fmt.Errorf("harness: network: apply %s: no container dependency named %s in this env (containers: %s)",
			f, strings.Join(unknown, ", "), have)
	}
	e := n.e
	heal, err := e.Partition(ctx, p.Groups...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	mine := e.part
	e.mu.Unlock()
	// The revert heals this partition only: once Reset has healed it,
	// a later partition is not this revert's to heal.
	return func(ctx context.Context) error {
		e.mu.Lock()
		current := e.part == mine
		e.mu.Unlock()
		if !current {
			return nil
		}
		return heal(ctx)
	}, nil
}
