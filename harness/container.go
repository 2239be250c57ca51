package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcwait "github.com/testcontainers/testcontainers-go/wait"
)

// ContainerSpec describes a container for [Env.Container]. Image and
// Port are required; the zero value of every other field means "the
// image's default".
type ContainerSpec struct {
	// Image is the image to run; it must be present locally or pullable.
	Image string
	// Port is the container's TCP port the Link fronts: "8080" or
	// "8080/tcp". It is published on 127.0.0.1 only.
	Port string
	// Env is the container's environment.
	Env map[string]string
	// Cmd replaces the image's command, Entrypoint its entrypoint.
	Cmd        []string
	Entrypoint []string
	// Ready checks, on the published address (127.0.0.1:port), that the
	// container serves: it runs until it returns nil at the first start
	// and after every restart. Prefer a protocol-level check (an HTTP
	// GET, a ping).
	Ready func(ctx context.Context, addr string) error
	// WaitingFor is used instead when Ready is nil: a testcontainers wait
	// strategy, run at the first start and after every restart. Do not
	// use tcwait.ForLog: it counts lines from the container's whole life,
	// so after a restart it reports ready too early.
	//
	// With neither, the check is that a TCP connection to the port is
	// accepted and held open for 100 ms (Docker's port proxy accepts
	// connections even when nothing listens, but closes them at once).
	WaitingFor tcwait.Strategy
	// StartTimeout bounds the first start and every wait for readiness
	// (default 2 minutes).
	StartTimeout time.Duration
	// Customizers are extra testcontainers options (files, mounts, ...),
	// applied before the Env's own: labels, name, network and port
	// publishing cannot be overridden.
	Customizers []testcontainers.ContainerCustomizer
}

// Container is a container started from a [ContainerSpec], behind a
// [Link]. It joins the Env's Docker network with its name as alias, so
// other containers of the Env reach it at name:port.
type Container struct {
	*Node
	ctr *testcontainers.DockerContainer
}

// Container starts a container called name from spec, fronted by a Link
// on spec.Port, and returns when it is ready. With [WithProtocol] the
// Link takes that protocol's faults too. It needs Docker: without it the
// test is skipped (or fails with SHAKEDOWN_REQUIRE_DOCKER=1). Bad specs,
// bad options and failed starts stop the test with t.Fatalf.
func (e *Env) Container(name string, spec ContainerSpec, opts ...ServiceOption) *Container {
	e.t.Helper()
	cfg, optErr := serviceOptions(opts)
	port, err := normalizePort(spec.Port)
	switch {
	case optErr != nil:
		err = optErr
	case spec.Image == "":
		err = errors.New("spec.Image is empty")
	case err != nil:
		err = fmt.Errorf("spec.Port %q: %w", spec.Port, err)
	case spec.StartTimeout < 0:
		err = fmt.Errorf("spec.StartTimeout %v is negative", spec.StartTimeout)
	}
	if err != nil {
		e.fatalf("harness: Container(%q): %v", name, err)
	}
	if spec.StartTimeout == 0 {
		spec.StartTimeout = defaultStartTimeout
	}
	if err := e.claim(name); err != nil {
		e.fatalf("%v", err)
	}
	if !e.needDocker("Container " + name) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.StartTimeout)
	defer cancel()
	t0 := time.Now()
	c, err := e.startContainer(ctx, name, port, spec)
	if err != nil {
		e.release(name)
		e.fatalf("harness: Container(%q): image %s: %v", name, spec.Image, err)
	}
	if cfg.protocol != "" {
		c.link.speak(cfg.protocol) // before any client connects
	}
	e.add(c)
	e.log.Info("container ready", "dependency", name, "image", spec.Image, "addr", c.Addr(), "direct", c.DirectAddr(), "node", c.rt.describe(), "took", time.Since(t0).Round(time.Millisecond))
	return c
}

func (e *Env) startContainer(ctx context.Context, name, port string, spec ContainerSpec) (*Container, error) {
	own, err := e.docker.customizers(ctx, name, port)
	if err != nil {
		return nil, err
	}
	c := &Container{}
	var ready func(context.Context, string) error
	switch {
	case spec.Ready != nil:
		ready = spec.Ready
	case spec.WaitingFor != nil:
		ready = func(ctx context.Context, _ string) error {
			if c.ctr == nil {
				return errors.New("container not created yet")
			}
			return spec.WaitingFor.WaitUntilReady(ctx, c.ctr)
		}
	default:
		ready = holdsConnection
	}
	opts := append([]testcontainers.ContainerCustomizer{}, spec.Customizers...)
	if len(spec.Env) > 0 {
		opts = append(opts, testcontainers.WithEnv(spec.Env))
	}
	if len(spec.Cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.Cmd...))
	}
	if len(spec.Entrypoint) > 0 {
		opts = append(opts, testcontainers.WithEntrypoint(spec.Entrypoint...))
	}
	opts = append(opts, own...)
	if spec.Ready == nil && spec.WaitingFor != nil {
		opts = append(opts, testcontainers.WithWaitStrategyAndDeadline(spec.StartTimeout, spec.WaitingFor))
	} else {
		opts = append(opts, testcontainers.WithWaitStrategyAndDeadline(spec.StartTimeout, readyStrategy{port: port, ready: ready}))
	}
	ctr, err := testcontainers.Run(ctx, spec.Image, opts...)
	if ctr != nil {
		e.docker.created(ctr, name)
	}
	if err != nil {
		return nil, err
	}
	c.ctr = ctr
	c.Node, err = e.startDockerNode(ctx, name, port, ctr, ready, spec.StartTimeout)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ID is the Docker container ID.
func (c *Container) ID() string { return c.ctr.GetContainerID() }

// Testcontainer is the underlying testcontainers container, for what
// the Env does not wrap (Exec, CopyFileToContainer, Logs). Node faults
// must go through the Container's own methods, or the Env loses track of
// the node's state and its Link's upstream.
func (c *Container) Testcontainer() *testcontainers.DockerContainer { return c.ctr }

// holdsConnection is the default readiness check: the port accepts a
// TCP connection and does not close it within 100 ms.
func holdsConnection(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	_, err = conn.Read(b[:])
	switch {
	case err == nil:
		return nil // the server spoke first
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil // held open
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s accepted and closed the connection: nothing listens behind the port yet", addr)
	}
	return err
}
