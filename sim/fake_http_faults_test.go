package sim

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

func TestFakeHTTPStatusFault(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		api := fakeAPI(t, n)
		c := httpClient(t, n, time.Second)
		revert := apply(t, api, toxics.HTTPStatus{Status: 503, RetryAfter: 3 * time.Second, Match: toxics.HTTPMatch{Nth: 2, PathPrefix: "/api"}})
		var got []int
		for range 4 {
			resp, err := c.Get(api.URL() + "/api/x")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got = append(got, resp.StatusCode)
			if resp.StatusCode == 503 {
				require.Equal(t, "3", resp.Header.Get("Retry-After"))
			}
		}
		require.Equal(t, []int{200, 503, 200, 503}, got)
		require.Equal(t, int64(2), api.Requests(), "answered requests never reach the handler")
		require.Equal(t, int64(1), api.Stats().Accepted, "the connection stays usable")
		body, err := get(c, api.URL()+"/other")
		require.NoError(t, err)
		require.Equal(t, "hello /other", body)
		revert()
		require.Empty(t, api.Active())
	})
}

func TestFakeHTTPDelayRevert(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		api := fakeAPI(t, n)
		c := httpClient(t, n, time.Hour)
		revert := apply(t, api, toxics.HTTPDelay{Delay: time.Minute, Match: toxics.HTTPMatch{Rate: 1}})
		start := time.Now()
		go func() {
			time.Sleep(time.Second)
			revert()
		}()
		body, err := get(c, api.URL()+"/slow")
		require.NoError(t, err)
		require.Equal(t, "hello /slow", body)
		took := time.Since(start)
		require.GreaterOrEqual(t, took, time.Second)
		require.Less(t, took, time.Second+10*time.Millisecond, "the revert ends the delay within 5ms")
	})
}

func TestHTTPFaultOnlyOnFakeHTTP(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		require.False(t, kv.Supports(toxics.KindHTTPStatus))
		_, err = kv.Apply(context.Background(), toxics.HTTPStatus{Status: 500, Match: toxics.HTTPMatch{Rate: 1}})
		require.ErrorContains(t, err, `sim: endpoint "kv": apply http_status(500 rate=1): http_status is an HTTP fault and only a FakeHTTP takes those`)
		api := fakeAPI(t, n)
		require.True(t, api.Supports(toxics.KindHTTPStatus))
		require.True(t, api.Supports(toxics.KindLatency))
		_, err = api.Apply(context.Background(), toxics.HTTPStatus{Status: 200, Match: toxics.HTTPMatch{Rate: 1}})
		require.ErrorContains(t, err, "http_status.status = 200")
	})
}
