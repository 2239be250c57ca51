package harness

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	tcwait "github.com/testcontainers/testcontainers-go/wait"
)

// Labels on every container and network an Env creates. The reaper (see
// [Reap]) removes what carries a run label whose owner process is gone.
const (
	LabelRun      = "shakedown.run"      // the Env's RunID
	LabelPID      = "shakedown.pid"      // pid of the test binary
	LabelPIDStart = "shakedown.pidstart" // its start time (clock ticks since boot), against pid reuse
	LabelHost     = "shakedown.host"     // hostname of the machine the test binary runs on
	LabelStarted  = "shakedown.started"  // unix time the Env was created
	LabelDep      = "shakedown.dep"      // the dependency's name
)

var tcDefaultsOnce sync.Once

// setTestcontainersDefaults sets two testcontainers variables when they are unset; a
// user who sets one (to anything) keeps their choice. testcontainers
// reads them once per process, so this must happen before its first call.
//
//   - TESTCONTAINERS_RYUK_DISABLED=true: Ryuk, testcontainers' reaper, is
//     an image pulled from a registry, which machines without one cannot
//     run; shakedown labels and reaps its own resources instead.
//   - TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: shakedown publishes ports on
//     127.0.0.1 only, but inside a container testcontainers takes the
//     default gateway for the Docker host, and its wait strategies would
//     dial an address that is neither loopback nor listening.
func setTestcontainersDefaults() {
	tcDefaultsOnce.Do(func() {
		for name, value := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
		} {
			if _, set := os.LookupEnv(name); !set {
				_ = os.Setenv(name, value)
			}
		}
	})
}

// dockerRuntime is an Env's connection to Docker and its network.
type dockerRuntime struct {
	env    *Env
	cli    *testcontainers.DockerClient
	labels map[string]string

	mu      sync.Mutex
	netName string // the Env's network, created with the first container
}

func newDockerRuntime(ctx context.Context, e *Env) (*dockerRuntime, error) {
	cli, err := newDockerClient(ctx)
	if err != nil {
		return nil, err
	}
	d := &dockerRuntime{env: e, cli: cli, labels: ownerLabels(e)}
	e.onClose("docker client", func(context.Context) error { return cli.Close() })
	if n, err := reapDocker(ctx, cli.Client, e.log); err != nil {
		e.log.Warn("reaping containers of dead runs failed", "err", err)
	} else if n > 0 {
		e.log.Info("reaped containers and networks of dead runs", "count", n)
	}
	return d, nil
}

// ownerLabels are the labels that tie a resource to this Env and process.
func ownerLabels(e *Env) map[string]string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return map[string]string{
		LabelRun:      e.runID,
		LabelPID:      strconv.Itoa(pid),
		LabelPIDStart: strconv.FormatUint(procStartTime(pid), 10),
		LabelHost:     host,
		LabelStarted:  strconv.FormatInt(e.started.Unix(), 10),
	}
}

func (d *dockerRuntime) labelsFor(dep string) map[string]string {
	l := make(map[string]string, len(d.labels)+1)
	for k, v := range d.labels {
		l[k] = v
	}
	if dep != "" {
		l[LabelDep] = dep
	}
	return l
}

// network returns the Env's Docker network, creating it on first use.
// Every container of the Env joins it with its dependency name as alias.
func (d *dockerRuntime) network(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.netName != "" {
		return d.netName, nil
	}
	name := "shakedown-" + d.env.runID
	if err := d.createNetwork(ctx, name); err != nil {
		return "", err
	}
	d.netName = name
	return name, nil
}

func (d *dockerRuntime) createNetwork(ctx context.Context, name string) error {
	_, err := d.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: d.labelsFor(""),
	})
	if err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	d.env.onClose("network "+name, func(ctx context.Context) error { return d.removeNetwork(ctx, name) })
	return nil
}

func (d *dockerRuntime) removeNetwork(ctx context.Context, name string) error {
	// A container still attached (a partition never healed) blocks the
	// removal; detach whatever is left.
	if res, err := d.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		for id := range res.Network.Containers {
			_ = d.disconnect(ctx, name, id)
		}
	}
	_, err := d.cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// normalizePort turns "5432" into "5432/tcp" and checks the form.
func normalizePort(p string) (string, error) {
	if p == "" {
		return "", errors.New("no port given")
	}
	if !strings.Contains(p, "/") {
		p += "/tcp"
	}
	port, err := network.ParsePort(p)
	if err != nil {
		return "", err
	}
	if port.Proto() != network.TCP {
		return "", fmt.Errorf("port %s: a Link fronts TCP only", p)
	}
	return port.String(), nil
}

// customizers are what every container of the Env gets: labels, a name,
// the Env's network with the dependency's name as alias, and its one
// exposed port published on 127.0.0.1 only.
func (d *dockerRuntime) customizers(ctx context.Context, dep, port string) ([]testcontainers.ContainerCustomizer, error) {
	netName, err := d.network(ctx)
	if err != nil {
		return nil, err
	}
	p, err := network.ParsePort(port)
	if err != nil {
		return nil, err
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	return []testcontainers.ContainerCustomizer{
		d.requireImage(ctx),
		testcontainers.WithLogger(tcLogger{d.env.log}),
		testcontainers.WithName("shakedown-" + d.env.runID + "-" + dep),
		testcontainers.WithLabels(d.labelsFor(dep)),
		tcnetwork.WithNetworkName([]string{dep}, netName),
		testcontainers.WithExposedPorts(port),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode(netName)
			hc.PortBindings = network.PortMap{p: {{HostIP: loopback, HostPort: ""}}}
		}),
	}, nil
}

// created registers the removal of a container right after it was
// created, whether or not it started: Run returns the container with its
// error.
func (d *dockerRuntime) created(ctr *testcontainers.DockerContainer, dep string) {
	if ctr == nil {
		return
	}
	id := ctr.GetContainerID()
	d.env.onClose("container "+dep, func(ctx context.Context) error { return d.remove(ctx, id) })
}

func (d *dockerRuntime) remove(ctx context.Context, id string) error {
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// hostAddr is 127.0.0.1:<published port> of the container's port.
func (d *dockerRuntime) hostAddr(ctx context.Context, id, port string) (string, error) {
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect container %.12s: %w", id, err)
	}
	c := res.Container
	if c.State == nil || !c.State.Running {
		return "", fmt.Errorf("container %.12s is not running", id)
	}
	if c.NetworkSettings != nil {
		p, err := network.ParsePort(port)
		if err != nil {
			return "", err
		}
		for _, b := range c.NetworkSettings.Ports[p] {
			if b.HostPort != "" && b.HostPort != "0" {
				return "127.0.0.1:" + b.HostPort, nil
			}
		}
	}
	return "", fmt.Errorf("container %.12s publishes no host port for %s", id, port)
}

// dockerNode is a container as a runtimeNode.
type dockerNode struct {
	d    *dockerRuntime
	ctr  *testcontainers.DockerContainer
	id   string
	port string
	// pressure is the container's cgroup cpu.pressure file, "" when it
	// cannot be read (see cgroupPressure). Its path outlives restarts.
	pressure string
}

func (n *dockerNode) describe() string { return "container " + shortID(n.id) }

func (n *dockerNode) start(ctx context.Context) (string, error) {
	if _, err := n.d.cli.ContainerStart(ctx, n.id, client.ContainerStartOptions{}); err != nil {
		return "", err
	}
	return n.d.hostAddr(ctx, n.id, n.port)
}

func (n *dockerNode) stop(ctx context.Context, grace time.Duration) error {
	var opts client.ContainerStopOptions
	if grace > 0 {
		secs := int((grace + time.Second - 1) / time.Second)
		opts.Timeout = &secs
	}
	_, err := n.d.cli.ContainerStop(ctx, n.id, opts)
	return err
}

func (n *dockerNode) kill(ctx context.Context) error {
	// Wait for the exit from before the kill, or a fast exit is missed.
	wait := n.d.cli.ContainerWait(ctx, n.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if _, err := n.d.cli.ContainerKill(ctx, n.id, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return err
	}
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("wait for exit: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *dockerNode) pause(ctx context.Context) error {
	// The cgroup freezer can fail to freeze a container that is busy in
	// the kernel (seen right after a network change: "unable to freeze");
	// that is transient, so try again a few times.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = n.d.cli.ContainerPause(ctx, n.id, client.ContainerPauseOptions{}); err == nil || !strings.Contains(err.Error(), "freeze") {
			return err
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

func (n *dockerNode) unpause(ctx context.Context) error {
	_, err := n.d.cli.ContainerUnpause(ctx, n.id, client.ContainerUnpauseOptions{})
	return err
}

// startDocker wraps what Postgres, Redis and Container share once their
// container runs: the first readiness check was done by the wait
// strategy; now find the address, start the Link and build the Node.
func (e *Env) startDockerNode(ctx context.Context, name, port string, ctr *testcontainers.DockerContainer, ready func(context.Context, string) error, startTimeout time.Duration) (*Node, error) {
	dn := &dockerNode{d: e.docker, ctr: ctr, id: ctr.GetContainerID(), port: port}
	addr, err := e.docker.hostAddr(ctx, dn.id, port)
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, func(ctx context.Context) error { return ready(ctx, addr) }); err != nil {
		return nil, fmt.Errorf("not ready on %s: %w", addr, err)
	}
	dn.pressure = e.docker.cgroupPressure(ctx, dn.id)
	link, err := e.newLink(name, addr)
	if err != nil {
		return nil, err
	}
	return newNode(e, name, link, dn, addr, ready, startTimeout), nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	if cerrdefs.IsNotFound(err) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no such") || strings.Contains(s, "not found")
}

// moduleNode is the end of starting a container with a testcontainers
// module (postgres.Run, redis.Run): it records the container for
// teardown, whether it started or not, and makes it a Node.
func (e *Env) moduleNode(ctx context.Context, name, port string, cfg depConfig, ctr testcontainers.Container, err error, ready func(context.Context, string) error) (*Node, error) {
	dc, ok := ctr.(*testcontainers.DockerContainer)
	if ok {
		e.docker.created(dc, name)
	}
	if err == nil && !ok {
		err = fmt.Errorf("unexpected container type %T", ctr)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", cfg.image, err)
	}
	return e.startDockerNode(ctx, name, port, dc, ready, cfg.startTimeout)
}

// tcLogger sends testcontainers' log lines to the Env's logger at debug
// level.
type tcLogger struct{ l logger }

func (t tcLogger) Printf(format string, v ...any) {
	t.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "testcontainers")
}

// readyStrategy is a testcontainers wait strategy that runs a readiness
// check on the container's published port: the same check that runs
// after every restart, so it is never fooled by old log lines.
type readyStrategy struct {
	port  string
	ready func(context.Context, string) error
}

func (s readyStrategy) WaitUntilReady(ctx context.Context, target tcwait.StrategyTarget) error {
	return poll(ctx, func(ctx context.Context) error {
		p, err := target.MappedPort(ctx, s.port)
		if err != nil {
			return err
		}
		return s.ready(ctx, "127.0.0.1:"+strconv.Itoa(int(p.Num())))
	})
}
