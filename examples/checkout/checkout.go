package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Variant selects how the service talks to its dependencies. Everything
// else (routes, SQL, Redis commands, logs) is the same code.
type Variant int

const (
	// Naive is how services are often first written: no timeouts, the
	// drivers' default pools, no breaker, no retries. It works until a
	// dependency is slow rather than down.
	Naive Variant = iota
	// Resilient bounds every call with a timeout, guards each dependency
	// with a bulkhead and a circuit breaker, retries what is safe to retry
	// (idempotent calls, and errors that prove a call had no effect) a
	// bounded number of times with jittered backoff, sizes its pools, and
	// answers in a degraded way when the stock cache is unavailable.
	Resilient
)

func (v Variant) String() string {
	switch v {
	case Naive:
		return "naive"
	case Resilient:
		return "resilient"
	}
	return fmt.Sprintf("Variant(%d)", int(v))
}

// Config is what [New] needs. Postgres and Redis are required; every other
// field has a documented zero value.
type Config struct {
	// Variant is Naive (the zero value) or Resilient.
	Variant Variant
	// Postgres configures the orders database, typically
	// pgxpool.ParseConfig(dsn). New copies it and, per variant, overrides
	// the pool size and timeouts; the caller's value is not modified.
	Postgres *pgxpool.Config
	// Redis configures the stock cache. New copies it and, per variant,
	// overrides the pool size, timeouts and retries.
	Redis *redis.Options
	// Logger receives one structured line per request, carrying the trace
	// ID of the incoming W3C traceparent header. Nil discards logs.
	Logger *slog.Logger
	// Seed seeds the jitter of the resilient variant's retry backoff, so
	// two runs with one seed wait the same delays.
	Seed int64
	// Limits are the resilient variant's numbers; zero fields take the
	// values of [DefaultLimits]. The naive variant ignores them.
	Limits Limits
	// UntracedFailures logs failed requests without the request's
	// context, and so without its trace ID: a mistake that the
	// observability check (observability_test.go) catches. Leave it off.
	UntracedFailures bool
}

// Service is the checkout HTTP service. Create it with [New], serve
// [Service.Handler] (or [Service.Server]), and Close it when done.
type Service struct {
	variant Variant
	limits  Limits
	log     *slog.Logger
	db      *pgxpool.Pool
	cache   *redis.Client
	// dbGuard and cacheGuard run every call to Postgres and Redis: a
	// plain call in the naive variant, failsafe policies in the
	// resilient one (see guard.go).
	dbGuard, cacheGuard guard
	handler             http.Handler
	closingPG           atomic.Int64
	pgOpened            atomic.Int64 // when Postgres's breaker last opened from closed (Unix ns)
	untraced            bool         // Config.UntracedFailures
	// closing is cancelled by Close, and with it every request's context.
	closing context.Context
	close   context.CancelFunc
}

// New builds the service. It opens no connection yet (pools dial on first
// use), so it returns at once and succeeds even while a dependency is down:
// the resilient variant is meant to start degraded. Call [Service.Migrate]
// to create the orders table.
func New(cfg Config) (*Service, error) {
	if cfg.Postgres == nil {
		return nil, errors.New("checkout: Config.Postgres is nil (use pgxpool.ParseConfig(dsn))")
	}
	if cfg.Postgres.ConnConfig == nil {
		return nil, errors.New("checkout: Config.Postgres.ConnConfig is nil (use pgxpool.ParseConfig(dsn))")
	}
	if cfg.Redis == nil {
		return nil, errors.New("checkout: Config.Redis is nil")
	}
	if cfg.Variant != Naive && cfg.Variant != Resilient {
		return nil, fmt.Errorf("checkout: Config.Variant is %d, want Naive or Resilient", int(cfg.Variant))
	}
	limits := cfg.Limits.withDefaults()
	if err := limits.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(traceHandler{log.Handler()}).With("variant", cfg.Variant.String())
	s := &Service{variant: cfg.Variant, limits: limits, log: log, untraced: cfg.UntracedFailures}

	pgCfg := cfg.Postgres.Copy()
	rdOpt := *cfg.Redis
	switch cfg.Variant {
	case Naive:
		// No connect timeout, whatever the DSN said (pgxpool still
		// gives up on a connect after 2 minutes); the pool keeps pgx's
		// default size (max(4, CPUs)). Queries wait as long as the
		// caller's context, which no one bounds.
		pgCfg.ConnConfig.ConnectTimeout = 0
		// go-redis does have timeouts by default; switch them off.
		// -1 means "block forever". There is no way to disable the dial
		// timeout, so make it long. No retries, default pool size.
		rdOpt.ReadTimeout = -1
		rdOpt.WriteTimeout = -1
		rdOpt.DialTimeout = time.Hour
		rdOpt.MaxRetries = -1
		s.dbGuard, s.cacheGuard = bare{}, bare{}
	case Resilient:
		// The bulkhead lets PostgresConns calls through at once; callers
		// beyond that are turned away after a short wait instead of
		// queueing inside the driver. The pool is twice that size,
		// because a connection whose query was cut short by a timeout is
		// not free at once: pgx closes it in the background, sending the
		// server a cancel request and waiting up to 15 s for an answer
		// that a faulty network may never deliver. Meanwhile it holds
		// its slot (see ClosingPostgresConns).
		pgCfg.MaxConns = int32(2 * limits.PostgresConns)
		pgCfg.ConnConfig.ConnectTimeout = limits.ConnectTimeout
		// A statement that the server is slow to run (a starved or busy
		// Postgres) is cancelled by the server itself before the
		// attempt's deadline: the attempt fails with 57014 and the
		// connection stays in the pool. Cut by the client's deadline
		// instead, the connection is closed, and closing it costs the
		// server two new backends: pgx's cancel request arrives on a
		// connection of its own, and the pool opens a replacement. On a
		// slow server that is more work for it exactly when it can least
		// afford it, and recovering after a fault waits behind it. The
		// client's deadline still ends an attempt whose network is gone.
		if pgCfg.ConnConfig.RuntimeParams == nil {
			pgCfg.ConnConfig.RuntimeParams = map[string]string{}
		}
		pgCfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout(limits.PostgresTimeout).Milliseconds(), 10)
		// The pool pings a connection that sat idle for a second before
		// handing it out; without a bound that ping can hold the
		// connection for a minute when the network eats the reply.
		pgCfg.PingTimeout = limits.PostgresTimeout
		// A connection that sat idle through a fault may have been cut
		// without a word, so one released before the breaker last opened
		// is pinged before it is handed out, as is any idle for a second
		// (pgxpool's default). A dead one is dropped and the next tried;
		// a live one (after a pause or a partition, those that were idle
		// through it) is kept, so recovering needs fewer new connections.
		pgCfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
			return p.IdleDuration >= time.Second || time.Since(time.Unix(0, s.pgOpened.Load())) <= p.IdleDuration
		}
		rdOpt.PoolSize = limits.RedisConns
		rdOpt.PoolTimeout = limits.QueueWait
		rdOpt.DialTimeout = limits.ConnectTimeout
		rdOpt.DialerRetries = 1 // one dial per attempt; retries are ours
		rdOpt.ReadTimeout = limits.RedisTimeout
		rdOpt.WriteTimeout = limits.RedisTimeout
		// Without this go-redis ignores the context's deadline and
		// cancellation on the socket, and only its own timeouts apply.
		rdOpt.ContextTimeoutEnabled = true
		// Retries live in one place (the guard). Retrying inside the
		// driver too would multiply the attempts under a fault.
		rdOpt.MaxRetries = -1
	}
	before := pgCfg.BeforeClose
	pgCfg.BeforeClose = func(c *pgx.Conn) {
		if c.IsClosed() {
			// Closed before the pool let go of it: pgx is tearing it down
			// in the background, and the pool still counts it acquired.
			s.closingPG.Add(1)
			go func() { <-c.PgConn().CleanupDone(); s.closingPG.Add(-1) }()
		}
		if before != nil {
			before(c)
		}
	}
	db, err := newPool(pgCfg)
	if err != nil {
		return nil, err
	}
	s.db = db
	s.cache = redis.NewClient(&rdOpt)
	if cfg.Variant == Resilient {
		// When Postgres's breaker opens, the pool's idle connections
		// become suspect: each is pinged before its next use (see
		// ShouldPing above). go-redis checks a connection's socket before
		// reusing it, so Redis needs nothing.
		s.dbGuard = newPolicy("postgres", s.log, limits, limits.PostgresTimeout, limits.PostgresConns, cfg.Seed,
			func() { s.pgOpened.Store(time.Now().UnixNano()) })
		s.cacheGuard = newPolicy("redis", s.log, limits, limits.RedisTimeout, limits.RedisConns, cfg.Seed+1, nil)
	}
	s.closing, s.close = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// statementTimeout is the server's bound on one statement for an attempt
// of the given length: three quarters of it, leaving the rest for the
// server's answer to come back, and at least a millisecond (0 would turn
// the bound off).
func statementTimeout(attempt time.Duration) time.Duration {
	return max(attempt*3/4, time.Millisecond)
}

// newPool is pgxpool.NewWithConfig, which panics on a Config not made by
// pgxpool.ParseConfig; a caller's mistake is an error here.
func newPool(c *pgxpool.Config) (p *pgxpool.Pool, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("checkout: Config.Postgres: %v (use pgxpool.ParseConfig(dsn))", r)
		}
	}()
	p, err = pgxpool.NewWithConfig(context.Background(), c)
	if err != nil {
		return nil, fmt.Errorf("checkout: postgres pool: %w", err)
	}
	return p, nil
}

// Variant reports which variant s is.
func (s *Service) Variant() Variant { return s.variant }

// Handler is the service's HTTP API:
//
//	POST /orders        {"item":"apple","qty":2} -> 201 {"id":"..."}
//	GET  /stock/{item}  -> 200 {"item":"apple","stock":41}
//	GET  /orders/{id}   -> 200 {"id":"...","item":"apple","qty":2}
//
// Every response is JSON; errors are {"error":"..."} with a 4xx or 5xx
// status. A degraded answer carries the header X-Degraded: 1.
func (s *Service) Handler() http.Handler { return s.handler }

// Server returns an http.Server for [Service.Handler] with the variant's
// server timeouts: none for Naive; for Resilient, bounds on reading the
// request and writing the response so a slow client cannot hold a
// goroutine forever. With httptest, assign it to Server.Config before
// Start.
func (s *Service) Server() *http.Server {
	srv := &http.Server{Handler: s.handler}
	if s.variant == Resilient {
		srv.ReadHeaderTimeout = s.limits.RequestTimeout
		srv.ReadTimeout = 2 * s.limits.RequestTimeout
		srv.WriteTimeout = 2 * s.limits.RequestTimeout
		srv.IdleTimeout = time.Minute
	}
	return srv
}

// Warm opens the connections the service serves with before it takes
// traffic, as a service does before it reports ready: PostgresConns
// Postgres connections and RedisConns Redis ones, outside the guards (a
// slow start-up is not a failure for the breaker to count). Without it
// the first requests of a cold service each wait for a connection of
// their own, and on a loaded machine their handshakes can take longer
// than the timeouts meant for serving. The Postgres connections are
// opened one after another, each held until all are open (so none is
// reused): eight SCRAM handshakes at once on a loaded machine each
// outlasted the connect timeout, again and again, until Warm gave up.
func (s *Service) Warm(ctx context.Context) error {
	pg := min(s.limits.PostgresConns, int(s.db.Config().MaxConns))
	held := make([]*pgxpool.Conn, 0, pg)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range pg {
		var c *pgxpool.Conn
		if err := untilOK(ctx, func() (err error) { c, err = s.db.Acquire(ctx); return err }); err != nil {
			return fmt.Errorf("checkout: warm Postgres: %d of %d connections open: %w", len(held), pg, err)
		}
		held = append(held, c)
	}
	errs := make(chan error, s.limits.RedisConns)
	var done sync.WaitGroup
	for range s.limits.RedisConns {
		done.Go(func() {
			if err := untilOK(ctx, func() error { return s.cache.Ping(ctx).Err() }); err != nil {
				errs <- fmt.Errorf("checkout: warm Redis: %w", err)
			}
		})
	}
	done.Wait()
	close(errs)
	return <-errs
}

// untilOK calls f until it succeeds or ctx ends: the timeouts of the
// service are for serving, and a handshake on a loaded machine can take
// longer than they allow without anything being wrong.
func untilOK(ctx context.Context, f func() error) error {
	return retryWhile(ctx, f, func(error) bool { return true })
}

// retryWhile is untilOK for the errors again accepts; any other ends it.
func retryWhile(ctx context.Context, f func() error, again func(error) bool) error {
	for {
		err := f()
		if err == nil || !again(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Postgres is the service's connection pool, for pool samplers
// (Pool.Stat) and for tests that read the orders table directly.
func (s *Service) Postgres() *pgxpool.Pool { return s.db }

// ClosingPostgresConns is the number of Postgres connections the pool
// is closing in the background. pgxpool counts them as acquired until they
// are closed, so a sampler of connections really in use subtracts them.
func (s *Service) ClosingPostgresConns() int64 { return s.closingPG.Load() }

// Redis is the service's Redis client, for pool samplers
// (Client.PoolStats) and for tests.
func (s *Service) Redis() *redis.Client { return s.cache }

// Close aborts the calls in flight (requests still being served fail with
// 503) and releases both pools. It returns even when a dependency hangs
// the naive variant: cancelling the requests' contexts stops pgx, and
// closing the Redis client closes connections that go-redis reads without
// a deadline. Close the HTTP server after the Service.
func (s *Service) Close() error {
	s.close()
	err := s.cache.Close()
	s.db.Close()
	return err
}
