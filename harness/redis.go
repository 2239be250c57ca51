package harness

import (
	"context"
	"os"

	goredis "github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/shakedown/shakedown/toxics"
)

// Redis is a Redis server, in a container or a local process, behind a
// [Link]. Connect through the Link with Options; the node-fault methods
// come from the embedded [Node].
//
// The server keeps Redis's default save points, so a graceful stop or
// restart writes a snapshot and the data survives; a crash loses what
// was not saved, as it would in production.
type Redis struct {
	*Node
	password string
}

// Redis starts a Redis server called name with a random password,
// fronted by a Link, and returns when it answers PING. It stops the test
// with t.Fatalf if the server cannot start, and skips it when neither
// Docker nor redis-server is available (see [Backend]).
func (e *Env) Redis(name string, opts ...RedisOption) *Redis {
	e.t.Helper()
	cfg := redisConfig{depConfig{image: os.Getenv(EnvRedisImage)}}
	for _, o := range opts {
		if o != nil {
			o.applyRedis(&cfg)
		}
	}
	r := &Redis{password: randomHex(16)}
	r.Node = e.startServer("Redis", name, &cfg.depConfig, DefaultRedisImage, []string{"redis-server"},
		func(ctx context.Context, docker bool) (*Node, error) {
			if docker {
				return e.redisContainer(ctx, name, cfg, r)
			}
			return e.redisProcess(ctx, name, cfg, r)
		})
	if r.Node == nil {
		return nil
	}
	r.link.speak(toxics.ProtocolRedis)
	e.add(r)
	return r
}

func (e *Env) redisContainer(ctx context.Context, name string, cfg redisConfig, r *Redis) (*Node, error) {
	const port = "6379/tcp"
	opts, err := e.docker.customizers(ctx, name, port)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		testcontainers.WithCmd("redis-server", "--requirepass", r.password),
		testcontainers.WithWaitStrategyAndDeadline(cfg.startTimeout, readyStrategy{port: port, ready: r.ready}),
	)
	ctr, err := tcredis.Run(ctx, cfg.image, opts...)
	var c testcontainers.Container
	if ctr != nil {
		c = ctr.Container
	}
	return e.moduleNode(ctx, name, port, cfg.depConfig, c, err, r.ready)
}

// ready is the readiness check: PING answers PONG (not LOADING).
func (r *Redis) ready(ctx context.Context, addr string) error {
	c := goredis.NewClient(&goredis.Options{
		Addr:            addr,
		Password:        r.password,
		MaxRetries:      -1,
		PoolSize:        1,
		DisableIdentity: true,
	})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// Options are go-redis options for the Link's address with the password
// set. Add the timeouts and pool size of the service under test.
func (r *Redis) Options() *goredis.Options {
	return &goredis.Options{Addr: r.Addr(), Password: r.password}
}

// Password is the server's password, random for every Env.
func (r *Redis) Password() string { return r.password }
