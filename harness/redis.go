package harness

import (
	"context"
	"fmt"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
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
	if cfg.image == "" {
		cfg.image = DefaultRedisImage
	}
	if cfg.startTimeout < 0 {
		e.fatalf("harness: Redis(%q): start timeout %v is negative", name, cfg.startTimeout)
	}
	if cfg.startTimeout == 0 {
		cfg.startTimeout = defaultStartTimeout
	}
	if err := e.claim(name); err != nil {
		e.fatalf("%v", err)
	}
	docker, ok := e.useDocker("Redis "+name, "redis-server")
	if !ok {
		return nil
	}
	r := &Redis{password: randomHex(16)}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.startTimeout)
	defer cancel()
	t0 := time.Now()
	var err error
	if docker {
		r.Node, err = e.redisContainer(ctx, name, cfg, r)
	} else {
		r.Node, err = e.redisProcess(ctx, name, cfg, r)
	}
	if err != nil {
		e.release(name)
		e.fatalf("harness: Redis(%q): %v", name, err)
	}
	e.add(r)
	e.log.Info("redis ready", "dependency", name, "addr", r.Addr(), "direct", r.DirectAddr(), "node", r.rt.describe(), "took", time.Since(t0).Round(time.Millisecond))
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
	if ctr != nil {
		if dc, ok := ctr.Container.(*testcontainers.DockerContainer); ok {
			e.docker.created(dc, name)
			if err == nil {
				return e.startDockerNode(ctx, name, port, dc, r.ready, cfg.startTimeout)
			}
		}
	}
	if err == nil {
		err = fmt.Errorf("unexpected container type %T", ctr.Container)
	}
	return nil, fmt.Errorf("image %s: %w", cfg.image, err)
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
