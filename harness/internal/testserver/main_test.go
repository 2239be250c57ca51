package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs the server on loopback ports and returns its addresses; it is
// stopped, and run's error checked, by t.Cleanup.
func start(t *testing.T) (echoAddr, httpURL string, logs *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	logs = &bytes.Buffer{}
	go func() {
		done <- run(ctx, "127.0.0.1:0", "127.0.0.1:0", logs, func(e, h net.Addr) { addrs <- [2]net.Addr{e, h} })
	}()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("run returned before ready: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return a[0].String(), "http://" + a[1].String(), logs
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	// Close idle keep-alive connections so goleak sees no client goroutines.
	http.DefaultClient.CloseIdleConnections()
	return resp.StatusCode, string(body)
}

func TestReadyLine(t *testing.T) {
	_, _, logs := start(t)
	require.Contains(t, logs.String(), "testserver ready")
}

func TestEcho(t *testing.T) {
	echoAddr, _, _ := start(t)
	conn, err := net.Dial("tcp", echoAddr)
	require.NoError(t, err)
	defer conn.Close()
	msg := []byte("hello, shakedown")
	_, err = conn.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(conn, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
}

func TestEchoConnectionClosedOnStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", "127.0.0.1:0", io.Discard, func(e, _ net.Addr) { addrs <- e })
	}()
	conn, err := net.Dial("tcp", (<-addrs).String())
	require.NoError(t, err)
	defer conn.Close()
	// A round trip proves the server has registered the connection.
	_, err = conn.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(conn, make([]byte, 1))
	require.NoError(t, err)

	cancel()
	require.NoError(t, <-done)
	// Generous bound: the server closed the connection, so the read ends at
	// once; 10 s only guards against a hang.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

func TestHTTP(t *testing.T) {
	echoAddr, base, _ := start(t)

	// A port that was just closed refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())

	tests := []struct {
		name     string
		path     string
		code     int
		contains string
	}{
		{"healthz", "/healthz", http.StatusOK, "ok"},
		{"dial reachable peer", "/dial?addr=" + url.QueryEscape(echoAddr), http.StatusOK, "ok"},
		{"dial refused", "/dial?addr=" + url.QueryEscape(closedAddr), http.StatusBadGateway, "refused"},
		{"dial without addr", "/dial", http.StatusBadRequest, "want host:port"},
		{"dial bad addr", "/dial?addr=nope", http.StatusBadRequest, `addr="nope"`},
		{"unknown path", "/nope", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, base+tt.path)
			require.Equal(t, tt.code, code, "body: %s", body)
			require.True(t, strings.Contains(body, tt.contains), "body %q should contain %q", body, tt.contains)
		})
	}
}

func TestListenError(t *testing.T) {
	// An out-of-range port fails before any name lookup or socket.
	err := run(context.Background(), "127.0.0.1:70000", "127.0.0.1:0", io.Discard, nil)
	require.ErrorContains(t, err, `listen echo on "127.0.0.1:70000"`)
	err = run(context.Background(), "127.0.0.1:0", "127.0.0.1:70000", io.Discard, nil)
	require.ErrorContains(t, err, `listen http on "127.0.0.1:70000"`)
}
