package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// httpGet GETs url with a timeout and returns the status and body.
func httpGet(ctx context.Context, url string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	// A transport per call: no idle connection outlives the test.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// healthz is the testserver's readiness check.
func healthz(ctx context.Context, addr string) error {
	code, body, err := httpGet(ctx, "http://"+addr+"/healthz", 2*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("healthz: %d %s", code, body)
	}
	return nil
}

func testserver(e *Env, name string) *Container {
	e.t.Helper()
	return e.Container(name, ContainerSpec{Image: testserverImage(), Port: "8080", Ready: healthz})
}

// canDial asks container from (through its Link) to open a TCP
// connection to the echo port of the dependency called to.
func canDial(ctx context.Context, t *testing.T, from *Container, to string) bool {
	t.Helper()
	code, body, err := httpGet(ctx, "http://"+from.Addr()+"/dial?addr="+to+":7000", 10*time.Second)
	require.NoError(t, err)
	require.Contains(t, []int{http.StatusOK, http.StatusBadGateway}, code, body)
	return code == http.StatusOK
}

func TestContainerPartition(t *testing.T) {
	e := New(t)
	a, b, c := testserver(e, "a"), testserver(e, "b"), testserver(e, "c")
	ctx := ctxFor(t, 5*time.Minute)

	require.True(t, canDial(ctx, t, a, "b"), "containers reach each other by name")
	require.True(t, canDial(ctx, t, b, "a"))

	heal, err := e.Partition(ctx, []string{"a"}, []string{"b"})
	require.NoError(t, err)
	require.False(t, canDial(ctx, t, a, "b"), "a and b are cut")
	require.False(t, canDial(ctx, t, b, "a"))
	require.True(t, canDial(ctx, t, a, "c"), "c is in no group and reaches everyone")
	require.True(t, canDial(ctx, t, c, "b"))

	_, err = e.Partition(ctx, []string{"a"}, []string{"c"})
	require.Error(t, err, "one partition at a time")

	require.NoError(t, heal(ctx))
	require.True(t, canDial(ctx, t, a, "b"), "healed")
	require.True(t, canDial(ctx, t, b, "a"))
	require.NoError(t, heal(ctx), "healing twice is harmless")

	t.Run("Reset heals a partition", func(t *testing.T) {
		_, err := e.Partition(ctx, []string{"a", "c"}, []string{"b"})
		require.NoError(t, err)
		require.False(t, canDial(ctx, t, c, "b"))
		require.True(t, canDial(ctx, t, c, "a"))
		require.NoError(t, e.Reset(ctx))
		require.True(t, canDial(ctx, t, c, "b"))
	})

	t.Run("crash and start keep the address", func(t *testing.T) {
		addr := a.Addr()
		revert, err := a.Apply(ctx, toxics.Crash{})
		require.NoError(t, err)
		_, _, err = httpGet(ctx, "http://"+a.Addr()+"/healthz", time.Second)
		require.Error(t, err)
		require.NoError(t, revert(ctx))
		require.Equal(t, addr, a.Addr())
		require.NoError(t, healthz(ctx, a.Addr()))
		require.True(t, canDial(ctx, t, a, "b"))
	})

	t.Run("link fault on a container", func(t *testing.T) {
		healOnFailure(t, e)
		revert, err := b.Apply(ctx, toxics.Down{})
		require.NoError(t, err)
		require.Error(t, healthz(ctx, b.Addr()))
		require.NoError(t, revert(ctx))
		require.NoError(t, healthz(ctx, b.Addr()))
	})

	t.Run("bad partitions", func(t *testing.T) {
		for _, groups := range [][][]string{
			{{"a"}},
			{{"a"}, {}},
			{{"a"}, {"nope"}},
			{{"a"}, {"a"}},
		} {
			_, err := e.Partition(ctx, groups...)
			require.Error(t, err, "%v", groups)
		}
	})
}

func TestContainerDefaultReadiness(t *testing.T) {
	e := New(t)
	// No Ready and no WaitingFor: the Env waits until the port holds a
	// connection, which Docker's port proxy alone does not.
	c := e.Container("plain", ContainerSpec{Image: testserverImage(), Port: "7000/tcp"})
	require.NoError(t, c.Ready(ctxFor(t, time.Minute)))
	require.NotEmpty(t, c.ID())
	require.NotNil(t, c.Testcontainer())
}
