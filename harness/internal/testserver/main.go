package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// dialTimeout bounds a /dial probe.
const dialTimeout = time.Second

func main() {
	echoAddr := flag.String("echo", ":7000", "TCP echo listen address")
	httpAddr := flag.String("http", ":8080", "HTTP listen address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *echoAddr, *httpAddr, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then closes every listener and connection
// and returns after all its goroutines have ended. ready, if not nil, is
// called with the bound addresses once both listeners are open.
func run(ctx context.Context, echoAddr, httpAddr string, logw io.Writer, ready func(echo, http net.Addr)) error {
	var lc net.ListenConfig
	echoLn, err := lc.Listen(ctx, "tcp", echoAddr)
	if err != nil {
		return fmt.Errorf("listen echo on %q: %w", echoAddr, err)
	}
	httpLn, err := lc.Listen(ctx, "tcp", httpAddr)
	if err != nil {
		echoLn.Close()
		return fmt.Errorf("listen http on %q: %w", httpAddr, err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /dial", handleDial)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	e := &echo{ln: echoLn, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- e.serve() })
	wg.Go(func() {
		if err := srv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("serve http: %w", err)
			return
		}
		errs <- nil
	})

	fmt.Fprintf(logw, "testserver ready echo=%s http=%s\n", echoLn.Addr(), httpLn.Addr())
	if ready != nil {
		ready(echoLn.Addr(), httpLn.Addr())
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	srv.Close()
	e.close()
	wg.Wait()
	return first
}

// handleDial answers whether a TCP connection to the addr query parameter
// can be opened from here.
func handleDial(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		http.Error(w, fmt.Sprintf("addr=%q: want host:port: %v", addr, err), http.StatusBadRequest)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(r.Context(), "tcp", addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn.Close()
	io.WriteString(w, "ok")
}

// echo is a TCP server that sends back what it receives.
type echo struct {
	ln net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (e *echo) serve() error {
	for {
		conn, err := e.ln.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("accept echo: %w", err)
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			conn.Close()
			return nil
		}
		e.conns[conn] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(func() {
			io.Copy(conn, conn)
			conn.Close()
			e.mu.Lock()
			delete(e.conns, conn)
			e.mu.Unlock()
		})
	}
}

// close stops accepting, closes live connections and waits for their
// goroutines.
func (e *echo) close() {
	e.mu.Lock()
	e.closed = true
	e.ln.Close()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
