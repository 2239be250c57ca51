package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// partition is a cut of the Env's Docker network into groups.
type partition struct {
	nets    []string         // one network per group
	grouped map[string]int   // dependency name -> group
	nodes   map[string]*Node // every container node of the Env
}

// Partition cuts the Env's Docker network so that containers in
// different groups cannot reach each other, until heal is called (or
// [Env.Reset]). Groups name container dependencies; a container in no
// group keeps reaching every group. At least two non-empty groups are
// needed, a name may appear in one group only, and only one partition
// can be in force at a time.
//
// The mechanism is real Docker networking: each group gets a network of
// its own on which its members keep their names as aliases, and leaves
// the shared one. Names of other groups then do not resolve and their
// addresses are unreachable; connections already open across the cut
// stop carrying data. Moving a container between networks moves its
// published port, so the Env re-points the container's Link: clients keep
// using the same Addr, but their open connections to a moved container
// are dropped when the partition starts and when it heals.
//
// Local processes share the host's loopback and cannot be partitioned.
func (e *Env) Partition(ctx context.Context, groups ...[]string) (heal func(context.Context) error, err error) {
	e.mu.Lock()
	if e.part != nil {
		e.mu.Unlock()
		return nil, errors.New("harness: partition: a partition is already in force; heal it first")
	}
	p, err := e.planPartition(groups)
	if err != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("harness: partition: %w", err)
	}
	e.part = p
	d := e.docker
	e.mu.Unlock()

	main, err := d.network(ctx)
	if err == nil {
		err = d.cut(ctx, p, main)
	}
	e.repoint(ctx, p.nodes)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("harness: partition: %w", err), e.healPartition(ctx))
	}
	e.log.Info("network partitioned", "groups", fmt.Sprint(groups))
	return e.healPartition, nil
}

func (e *Env) planPartition(groups [][]string) (*partition, error) {
	if len(groups) < 2 {
		return nil, fmt.Errorf("need at least two groups, got %d", len(groups))
	}
	p := &partition{grouped: map[string]int{}, nodes: map[string]*Node{}}
	for _, m := range e.members {
		if n, ok := dockerNodeOf(m); ok {
			p.nodes[m.Name()] = n
		}
	}
	for i, g := range groups {
		if len(g) == 0 {
			return nil, fmt.Errorf("group %d is empty", i)
		}
		for _, name := range g {
			m, ok := e.byName[name]
			if !ok || m == nil {
				return nil, fmt.Errorf("group %d: no dependency %q in this env (have %v)", i, name, e.namesLocked())
			}
			if _, ok := p.nodes[name]; !ok {
				return nil, fmt.Errorf("group %d: %q is not a container; only containers can be partitioned", i, name)
			}
			if j, dup := p.grouped[name]; dup {
				return nil, fmt.Errorf("%q is in group %d and group %d", name, j, i)
			}
			p.grouped[name] = i
		}
	}
	if e.docker == nil {
		return nil, errors.New("the env has no Docker network")
	}
	e.partSeq++
	for i := range groups {
		p.nets = append(p.nets, fmt.Sprintf("shakedown-%s-p%d-%d", e.runID, e.partSeq, i))
	}
	return p, nil
}

func dockerNodeOf(m member) (*Node, bool) {
	var n *Node
	switch d := m.(type) {
	case *Postgres:
		n = d.Node
	case *Redis:
		n = d.Node
	case *Container:
		n = d.Node
	default:
		return nil, false
	}
	_, ok := n.rt.(*dockerNode)
	return n, ok
}

func (d *dockerRuntime) cut(ctx context.Context, p *partition, main string) error {
	for _, name := range p.nets {
		if err := d.createNetwork(ctx, name); err != nil {
			return err
		}
	}
	for name, n := range p.nodes {
		id := n.rt.(*dockerNode).id
		if g, ok := p.grouped[name]; ok {
			if err := d.connect(ctx, p.nets[g], id, name); err != nil {
				return err
			}
			if err := d.disconnect(ctx, main, id); err != nil {
				return err
			}
			continue
		}
		for _, nw := range p.nets {
			if err := d.connect(ctx, nw, id, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// healPartition undoes the partition in force, if any.
func (e *Env) healPartition(ctx context.Context) error {
	e.mu.Lock()
	p := e.part
	d := e.docker
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	main, err := d.network(ctx)
	if err != nil {
		return fmt.Errorf("harness: heal partition: %w", err)
	}
	var errs []error
	for name, n := range p.nodes {
		id := n.rt.(*dockerNode).id
		if _, ok := p.grouped[name]; ok {
			errs = append(errs, d.connect(ctx, main, id, name))
		}
		for _, nw := range p.nets {
			errs = append(errs, d.disconnect(ctx, nw, id))
		}
	}
	for _, nw := range p.nets {
		errs = append(errs, d.removeNetwork(ctx, nw))
	}
	e.repoint(ctx, p.nodes)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("harness: heal partition: %w", err)
	}
	e.mu.Lock()
	if e.part == p {
		e.part = nil
	}
	e.mu.Unlock()
	e.log.Info("partition healed")
	return nil
}

// repoint moves the Links of running containers to their published
// ports, which change when a container changes networks.
func (e *Env) repoint(ctx context.Context, nodes map[string]*Node) {
	for _, n := range nodes {
		n.mu.Lock()
		if n.state != stopped {
			dn := n.rt.(*dockerNode)
			addr, err := dn.d.hostAddr(ctx, dn.id, dn.port)
			if err != nil {
				e.log.Warn("re-point link: no published port", "dependency", n.name, "err", err)
			} else if addr != n.DirectAddr() {
				n.direct.Store(addr)
				if err := n.link.SetUpstream(addr); err != nil {
					e.log.Warn("re-point link failed", "dependency", n.name, "err", err)
				}
			}
		}
		n.mu.Unlock()
	}
}

func (d *dockerRuntime) connect(ctx context.Context, netName, id, alias string) error {
	_, err := d.cli.NetworkConnect(ctx, netName, client.NetworkConnectOptions{
		Container:      id,
		EndpointConfig: &network.EndpointSettings{Aliases: []string{alias}},
	})
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("connect %s to %s: %w", shortID(id), netName, err)
	}
	return nil
}

func (d *dockerRuntime) disconnect(ctx context.Context, netName, id string) error {
	_, err := d.cli.NetworkDisconnect(ctx, netName, client.NetworkDisconnectOptions{Container: id, Force: true})
	if err != nil && (isNotFound(err) || strings.Contains(err.Error(), "is not connected")) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disconnect %s from %s: %w", shortID(id), netName, err)
	}
	return nil
}
