package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Which Docker engine. testcontainers-go (v0.45.0) picks the engine once
// per process from, in order: tc.host in ~/.testcontainers.properties,
// DOCKER_HOST, /var/run/docker.sock, docker.host in the properties file,
// a rootless engine's socket. A candidate that does not answer is
// skipped, so a DOCKER_HOST that points nowhere is silently replaced by
// the local socket, and a rootful engine that is down is reported as
// "rootless Docker not found".
//
// shakedown asks the engine the environment names first, itself, and
// refuses with an error that names it when it does not answer; then it
// checks that testcontainers chose that same engine. So a DOCKER_HOST is
// honoured or refused, never swapped.

// defaultDockerSocket is the socket of a rootful engine, used when
// DOCKER_HOST is unset.
const defaultDockerSocket = "/var/run/docker.sock"

// dockerTarget is the engine the environment names.
type dockerTarget struct {
	host   string // as a Docker client takes it: unix:///..., tcp://...
	source string // where it came from, for errors
	// exists is false for the default socket when there is no such file.
	exists bool
}

// configuredDocker returns the engine the environment names: DOCKER_HOST
// if set, else tc.host from ~/.testcontainers.properties, else the
// default socket. When none of them exists (exists is false),
// testcontainers is left to search (a rootless engine, docker.host).
func configuredDocker(socket string) dockerTarget {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return dockerTarget{host: h, source: "DOCKER_HOST=" + h, exists: true}
	}
	if h := tcHostProperty(); h != "" {
		return dockerTarget{host: h, source: "tc.host=" + h + " in ~/.testcontainers.properties", exists: true}
	}
	_, err := os.Stat(socket)
	return dockerTarget{
		host:   "unix://" + socket,
		source: "the default socket " + socket + " (DOCKER_HOST is unset)",
		exists: err == nil,
	}
}

// tcHostProperty is tc.host from ~/.testcontainers.properties, which
// testcontainers prefers even to DOCKER_HOST.
func tcHostProperty() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	f, err := os.Open(filepath.Join(home, ".testcontainers.properties"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "tc.host" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// pingDocker asks the engine at host whether it answers, with the TLS
// settings of the environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).
func pingDocker(ctx context.Context, host string) error {
	cli, err := client.New(client.FromEnv, client.WithHost(host))
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}

// newDockerClient returns a testcontainers Docker client for the engine
// the environment names (see [configuredDocker]), or an error that names
// that engine, why it does not answer, and what to do.
func newDockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	return newDockerClientFor(ctx, configuredDocker(defaultDockerSocket))
}

func newDockerClientFor(ctx context.Context, target dockerTarget) (*testcontainers.DockerClient, error) {
	setTestcontainersDefaults()
	if target.exists {
		if err := pingDocker(ctx, target.host); err != nil {
			return nil, dockerDownError(target, err)
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, dockerDownError(target, err)
	}
	if target.exists && cli.DaemonHost() != target.host {
		got := cli.DaemonHost()
		_ = cli.Close()
		return nil, fmt.Errorf("docker: %s names the engine to use, but testcontainers-go already chose %s for this process "+
			"(it chooses once per process, and an engine that did not answer then was skipped): "+
			"set DOCKER_HOST before the first test that uses Docker, and check that the engine answers (docker -H %s info)",
			target.source, got, target.host)
	}
	return cli, nil
}

// errDockerDown is wrapped by the errors of an engine that does not
// answer.
var errDockerDown = errors.New("no Docker engine answers")

// dockerDownError explains a Docker engine that does not answer: which
// engine was asked, and what to do.
func dockerDownError(target dockerTarget, err error) error {
	switch {
	case strings.HasPrefix(target.source, "DOCKER_HOST="):
		return fmt.Errorf("%w at %s (%v): shakedown does not fall back to another engine; "+
			"start that engine (check with docker -H %s info), or unset DOCKER_HOST to use the local one (%s)",
			errDockerDown, target.source, err, target.host, defaultDockerSocket)
	case strings.HasPrefix(target.source, "tc.host="):
		return fmt.Errorf("%w at %s (%v): start that engine (check with docker -H %s info), or remove tc.host from the file",
			errDockerDown, target.source, err, target.host)
	case target.exists:
		return fmt.Errorf("%w at %s (%v): start it (systemctl start docker, or dockerd), "+
			"or set DOCKER_HOST to an engine that runs",
			errDockerDown, target.source, err)
	}
	return fmt.Errorf("%w: DOCKER_HOST is unset and %s does not exist, and testcontainers-go found no other engine (%v): "+
		"install and start Docker (make setup does), or set DOCKER_HOST to an engine that runs",
		errDockerDown, defaultDockerSocket, err)
}
