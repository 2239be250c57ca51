package sim

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// FakeHTTP is an in-process HTTP server on a [Network]: an http.Handler
// served with net/http, standing where a real service cannot. It embeds
// its [Endpoint], so it is the [Target] for its name.
//
// Clients reach it with a Transport that dials through the network:
//
//	client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}}
//	resp, err := client.Get(api.URL() + "/orders")
type FakeHTTP struct {
	*Endpoint
	srv      *http.Server
	requests atomic.Int64
	wg       sync.WaitGroup
	once     sync.Once
	err      error

	mu       sync.Mutex
	panicErr error

	httpState httpFaultState // see fake_http_faults.go
}

// FakeHTTP starts a fake HTTP server under name serving h. It is ready on
// return and closed by [Network.Close] or [FakeHTTP.Close]. A panic in h
// aborts its request (the client sees the connection close, as net/http
// does) and is reported by [FakeHTTP.Err]; the server logs nothing.
func (n *Network) FakeHTTP(name string, h http.Handler) (*FakeHTTP, error) {
	if h == nil {
		return nil, fmt.Errorf("sim: fake HTTP %q: handler is nil", name)
	}
	ln, ep, err := listenFake(n, "fake HTTP", name)
	if err != nil {
		return nil, err
	}
	f := &FakeHTTP{Endpoint: ep}
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer f.recover()
			f.serveFaulty(w, r, h)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				f.wg.Add(1)
			case http.StateClosed, http.StateHijacked:
				f.wg.Done()
			}
		},
	}
	if err := n.addFake(f); err != nil {
		ln.Close()
		return nil, fmt.Errorf("sim: fake HTTP %q: %w", name, err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.srv.Serve(ln) // returns once the listener or the server closes
	}()
	return f, nil
}

// URL returns the base URL of the fake, "http://<name>".
func (f *FakeHTTP) URL() string { return "http://" + f.Name() }

// Requests returns how many requests reached the handler (those an
// HTTPStatus fault answers do not).
func (f *FakeHTTP) Requests() int64 { return f.requests.Load() }

func (f *FakeHTTP) recover() {
	r := recover()
	if r == nil || r == http.ErrAbortHandler {
		if r != nil {
			panic(r)
		}
		return
	}
	f.mu.Lock()
	if f.panicErr == nil {
		f.panicErr = fmt.Errorf("%w: fake HTTP %q: handler: %v", ErrPanic, f.Name(), r)
	}
	f.mu.Unlock()
	panic(http.ErrAbortHandler)
}

// Err returns the first panic of the handler, wrapping [ErrPanic], or nil.
func (f *FakeHTTP) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.panicErr
}

// Close stops the fake: it stops listening, closes every connection and
// waits for the server's goroutines to end. It is idempotent.
func (f *FakeHTTP) Close() error {
	f.once.Do(func() {
		f.err = f.srv.Close()
		if errors.Is(f.err, net.ErrClosed) {
			f.err = nil // the network closed the listener first
		}
		f.wg.Wait()
	})
	return f.err
}
