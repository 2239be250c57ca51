package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	tpclient "github.com/Shopify/toxiproxy/v2/client"
)

// toxiproxyServerPkg is Toxiproxy's own server, at the version go.mod pins.
const toxiproxyServerPkg = "github.com/Shopify/toxiproxy/v2/cmd/server"

// startToxiproxyServer builds toxiproxy-server from the pinned module into
// a temp dir, runs it with its HTTP API on 127.0.0.1, and returns the
// API's address once it answers. t.Cleanup stops the server (SIGTERM, then
// SIGKILL after 10 s) and waits for it; if the test binary dies first, the
// kernel kills the server (Pdeathsig).
func startToxiproxyServer(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: the test builds toxiproxy-server from %s: %v", toxiproxyServerPkg, err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "toxiproxy-server")
	build := exec.Command(goBin, "build", "-o", bin, toxiproxyServerPkg)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", toxiproxyServerPkg, err, out)
	}
	// The server cannot listen on port 0 and tell which port it got, so
	// the test picks a free port; another process may take it meanwhile,
	// and then the server exits and the test tries another.
	var last error
	for attempt := range 5 {
		api, err := runToxiproxyServer(t, bin, filepath.Join(dir, fmt.Sprintf("server-%d.log", attempt)))
		if err == nil {
			return api
		}
		last = err
	}
	t.Fatalf("toxiproxy-server did not start: %v", last)
	return ""
}

// runToxiproxyServer starts bin on a free port and waits until its API
// answers, or returns the error if the server exits first.
func runToxiproxyServer(t testing.TB, bin, logPath string) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr(false, nil)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	api := net.JoinHostPort("127.0.0.1", port)
	c := tpclient.NewClient(api)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := c.Version(); err == nil {
			break
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("toxiproxy-server on port %s exited (%v) before its API answered:\n%s", port, waitErr, out)
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("toxiproxy-server on port %s did not answer within 30s:\n%s", port, out)
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		var ee *exec.ExitError
		if waitErr != nil && !errors.As(waitErr, &ee) {
			t.Errorf("toxiproxy-server: %v", waitErr)
		}
	})
	return api, nil
}

// serverProxy creates a proxy on the Toxiproxy server at api, listening on
// 127.0.0.1:0 in front of upstream, as a staging setup would have; t.Cleanup
// deletes it.
func serverProxy(t testing.TB, api, name, upstream string) *tpclient.Proxy {
	t.Helper()
	c := tpclient.NewClient(api)
	p, err := c.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("create proxy %q on the Toxiproxy server: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Delete(); err != nil {
			t.Errorf("delete proxy %q: %v", name, err)
		}
	})
	return p
}

// serverToxics lists the toxics of the proxy on the server.
func serverToxics(t testing.TB, api, proxy string) tpclient.Toxics {
	t.Helper()
	p, err := tpclient.NewClient(api).Proxy(proxy)
	if err != nil {
		t.Fatalf("read proxy %q: %v", proxy, err)
	}
	ts, err := p.Toxics()
	if err != nil {
		t.Fatalf("list the toxics of %q: %v", proxy, err)
	}
	return ts
}

// serverEnabled reads whether the proxy is enabled on the server.
func serverEnabled(t testing.TB, api, proxy string) bool {
	t.Helper()
	p, err := tpclient.NewClient(api).Proxy(proxy)
	if err != nil {
		t.Fatalf("read proxy %q: %v", proxy, err)
	}
	return p.Enabled
}
