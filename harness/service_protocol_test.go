package harness

import (
	"net/http"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestDeclaredProtocol: an Address or a Container declared with
// WithProtocol takes its protocol's faults, through the Link to a real
// server, and one that declared none refuses them with an error that says
// how to declare it.
func TestDeclaredProtocol(t *testing.T) {
	e := New(t, WithSeed(3))
	ctx := ctxFor(t, 5*time.Minute)

	t.Run("address", func(t *testing.T) {
		r := e.Redis("cache")
		declared := e.Address("declared", r.DirectAddr(), WithProtocol(toxics.ProtocolRedis))
		plain := e.Address("plain", r.DirectAddr())
		require.Equal(t, toxics.ProtocolRedis, declared.Link().Protocol())
		require.True(t, declared.Supports(toxics.KindRedisError))
		require.False(t, declared.Supports(toxics.KindPgError), "a Redis address takes no Postgres fault")
		require.False(t, plain.Supports(toxics.KindRedisError))

		opts := *r.Options()
		opts.Addr, opts.MaxRetries = declared.Addr(), -1
		c := goredis.NewClient(&opts)
		defer c.Close()
		require.NoError(t, c.Ping(ctx).Err())

		revert, err := declared.Apply(ctx, toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1}})
		require.NoError(t, err)
		err = c.Get(ctx, "k").Err()
		require.True(t, goredis.HasErrorPrefix(err, "LOADING"), "go-redis reports the reply: %v", err)
		require.NoError(t, revert(ctx))
		require.ErrorIs(t, c.Get(ctx, "k").Err(), goredis.Nil, "after the revert Redis answers")

		_, err = plain.Apply(ctx, toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1}})
		require.ErrorContains(t, err, "declares no protocol")
		require.ErrorContains(t, err, `WithProtocol("redis")`)
	})

	t.Run("container", func(t *testing.T) {
		declared := e.Container("web", ContainerSpec{Image: testserverImage(), Port: "8080", Ready: healthz}, WithProtocol(toxics.ProtocolHTTP))
		plain := testserver(e, "web-plain")
		require.Equal(t, toxics.ProtocolHTTP, declared.Link().Protocol())
		require.True(t, declared.Supports(toxics.KindHTTPStatus))
		require.False(t, plain.Supports(toxics.KindHTTPStatus))
		require.True(t, plain.Supports(toxics.KindCrash), "node faults stay")

		revert, err := declared.Apply(ctx, toxics.HTTPStatus{Status: http.StatusServiceUnavailable, Match: toxics.HTTPMatch{Rate: 1}})
		require.NoError(t, err)
		code, body, err := httpGet(ctx, "http://"+declared.Addr()+"/healthz", 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.NoError(t, revert(ctx))
		require.NoError(t, healthz(ctx, declared.Addr()))

		_, err = plain.Apply(ctx, toxics.HTTPStatus{Status: http.StatusServiceUnavailable, Match: toxics.HTTPMatch{Rate: 1}})
		require.ErrorContains(t, err, `harness.WithProtocol("http")`)
	})
}
