// Package harness is shakedown's real world: the dependencies of a
// service under test, started for real and fronted by fault-injecting
// proxies. A test that slows every reply of a real Postgres:
//
//	package checkout_test
//
//	import (
//		"context"
//		"testing"
//		"time"
//
//		"github.com/jackc/pgx/v5/pgxpool"
//
//		"github.com/shakedown/shakedown/harness"
//		"github.com/shakedown/shakedown/toxics"
//	)
//
//	func TestQueryUnderLatency(t *testing.T) {
//		env := harness.New(t)    // torn down by t.Cleanup
//		db := env.Postgres("db") // answers queries on return, behind a Link
//
//		ctx := context.Background()
//		pool, err := pgxpool.NewWithConfig(ctx, db.PoolConfig()) // through db's Link
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(pool.Close)
//
//		revert, err := db.Apply(ctx, toxics.Latency{Delay: 100 * time.Millisecond})
//		if err != nil {
//			t.Fatal(err)
//		}
//		start := time.Now()
//		if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
//			t.Fatal(err)
//		}
//		t.Logf("SELECT 1 behind 100ms each way took %v", time.Since(start))
//		if err := revert(ctx); err != nil { // replies are fast again
//			t.Fatal(err)
//		}
//	}
//
// It needs Docker (or initdb and postgres on PATH, see [Backend]); the
// images come from SHAKEDOWN_POSTGRES_IMAGE and SHAKEDOWN_REDIS_IMAGE
// when set.
//
// # One Env per test
//
// [New] returns an [Env]. Ask it for dependencies; each starts when
// asked, is ready when the call returns, and sits behind a [Link] whose
// address never changes:
//
//	env := harness.New(t)
//	db := env.Postgres("db")
//	cache := env.Redis("cache")
//	pool, _ := pgxpool.NewWithConfig(ctx, db.PoolConfig()) // through db's Link
//	rdb := redis.NewClient(cache.Options())                // through cache's Link
//
// Everything the Env creates (Links, containers, local processes, Docker
// networks, directories) is torn down by t.Cleanup in reverse order,
// whether the test passes, fails or panics. What a killed test binary
// left behind is removed by the next run (see [Reap]); everything is
// labelled with the Env's [Env.RunID].
//
// # Dependencies
//
//   - [Env.Postgres] and [Env.Redis]: servers with a random password per
//     Env. [Postgres.DSN], [Postgres.ConnConfig], [Postgres.PoolConfig]
//     and [Redis.Options] connect through the Link.
//   - [Env.Container]: any image, one TCP port fronted by the Link, and
//     a readiness check that runs after every start ([ContainerSpec]).
//   - [Env.Address]: an address that already exists (an
//     httptest.Server, a service the test started), fronted by a Link.
//
// Each is a [Dependency]: a name (the target name schedules use), Addr
// (the Link, stable), DirectAddr (the server itself), Supports and Apply.
// The Dependency interface matches package sim's Target, so an Env's
// dependencies are targets of a schedule without harness importing sim.
//
// # Faults
//
// Apply takes any fault of package toxics. Link faults (latency,
// blackhole, reset, down...) go to the Link. Node faults act on the
// container or process: [toxics.Crash] kills it (SIGKILL), [toxics.Stop]
// stops it gracefully, [toxics.Pause] freezes it (docker pause, SIGSTOP),
// [toxics.Restart] stops and starts it. Reverting a crash or stop starts
// the node again; after every start the Link is re-pointed at the node's
// new address and the call returns only once the node answers a real
// check (a query for Postgres, PING for Redis), never a log line:
//
//	revert, err := db.Apply(ctx, toxics.Crash{})
//	// ... the service sees errors ...
//	err = revert(ctx) // Postgres is back, at the same db.Addr()
//
// The same operations are methods of [Node], which Postgres, Redis and
// Container embed: Crash, Stop, Start, Pause, Unpause, Restart.
//
// Protocol faults speak the dependency's protocol: the Links of
// [Env.Redis] and [Env.Postgres] declare theirs, [Env.Address] and
// [Env.Container] declare one when given [WithProtocol] (a Link that
// declares none refuses protocol faults, saying how to declare one), and
// they take [toxics.RedisError] and [toxics.RedisDelay], or [toxics.PgError]
// and [toxics.PgRefuse], for a seeded share of the requests, the N-th, or
// named commands; the client reports the error as the server would have
// sent it (a *pgconn.PgError with the SQLSTATE for pgx and database/sql,
// the error reply for go-redis), and replies keep their order:
//
//	db.Apply(ctx, toxics.PgError{Code: toxics.PgSerializationFailure,
//		Requests: toxics.Requests{Share: 0.2, Commands: "UPDATE"}})
//
// A data step runs statements of the test's own on a dependency when it
// begins and others when it ends, placed in a schedule like any fault:
// [Postgres.Statements] and [Redis.Commands] make a [DataStep] target
// that takes [toxics.Data].
//
// A Link started with [WithProtocol]("http") also takes the HTTP faults of
// package toxics (toxics.HTTPKinds): it answers a share of the requests
// with a 503 or a 429 and Retry-After, delays, cuts or trickles responses,
// or changes a field of their JSON. It parses HTTP/1.1 only while such a
// fault is armed (link_http.go says how, and what it does not support:
// pipelining). Declare it on an Env's dependency with [WithProtocol]:
//
//	api := env.Address("api", srv.Listener.Addr().String(), harness.WithProtocol("http"))
//	web := env.Container("web", spec, harness.WithProtocol("http"))
//
// A Link with no fault costs about as much as a socket: each direction of
// each connection moves its bytes kernel to kernel (splice on Linux), with
// no proxy stage in between, so a baseline measured through Links measures
// the service. Apply moves the live connections onto Toxiproxy's pipeline,
// where the fault acts on the very next byte, and the revert of the last
// fault moves them back; no byte is lost, repeated or reordered on the way
// (see [Link]).
//
// [Env.Partition] cuts the Env's Docker network between groups of
// containers; [Env.Network] is that network as a target of schedules,
// named [NetworkTarget], which takes [toxics.Partition] faults (so the
// generators of package properties draw partitions once two containers
// run). [Env.Reset] heals everything: it clears link and DNS faults,
// heals a partition, restarts what is down and waits until it is ready.
// It runs between property iterations and touches no container when
// nothing crashed. Its wait is a readiness check every 5 ms at most for
// the first 2 s, so it returns within a few milliseconds of the node's
// answering: after a crash, a Postgres container is back in 0.65 to
// 0.9 s (most of it Docker's start) and a local Postgres in 0.1 s:
//
//	go test ./harness/ -run '^$' -bench 'Reset/.*/crash|PollLateness' -benchtime 5x
//
// [Env.DNS] is a name server for the dependencies (zone shakedown.test:
// db is db.shakedown.test, an A record of 127.0.0.1 and an SRV record of
// its Link's port) on 127.0.0.1, UDP and TCP, and a target of schedules
// named [DNSTarget] that takes the DNS faults (delay, SERVFAIL, NXDOMAIN,
// no answer). Clients reach it through [Env.Resolver] (Go's resolver
// asking it only) or [DNS.DialContext], dialing [DNS.Address]:
//
//	d := env.DNS()
//	addr, _ := d.Address("cache") // "cache.shakedown.test:<Link port>"
//	client := redis.NewClient(&redis.Options{Addr: addr, Dialer: d.DialContext})
//	revert, _ := d.Apply(ctx, toxics.DNSNXDomain{}) // new dials: *net.DNSError, IsNotFound
//
// # A deployed Toxiproxy
//
// Where services already sit behind a Toxiproxy server (a staging
// environment), [NewRemoteProxy] makes one of its proxies a target of the
// same schedules, driven through the server's HTTP API with Toxiproxy's
// own client:
//
//	db := harness.NewRemoteProxy(t, "db", "toxiproxy.staging:8474", "postgres")
//
// It takes the link faults Toxiproxy can carry out as their types say
// (latency, bandwidth, slicer, slow close, data limit, blackhole, down)
// and refuses the others with the reason ([RemoteProxy.ValidateFault]),
// which sim reports before a run starts. A step costs an HTTP request:
// the fault is in force for the next byte 0.5 to 0.9 ms after Apply is
// called (p50), where a Link takes 0.04 to 0.07 ms, 11 to 14 times less
// (both side by side, load average 20 to 50 on 2 cores):
//
//	go test ./harness -run '^$' -bench RemoteFaultEffect -benchtime 300x -count 3
//
// # Backends
//
// Postgres and Redis run in Docker through testcontainers-go, or, when
// Docker does not answer but initdb/postgres and redis-server are on
// PATH, as local processes on 127.0.0.1 with the same interface and the
// same node faults ([Backend], SHAKEDOWN_BACKEND). Without either the
// test is skipped with the reason and the fix; with
// SHAKEDOWN_REQUIRE_DOCKER=1 (CI) it fails instead.
//
// A local Postgres starts on a copy of a template: a data directory that
// initdb made once, for the same binaries, user and database, and that
// stays in the user's cache for the next Env and the next run, at
//
//	${SHAKEDOWN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shakedown}/postgres-templates
//
// It is the one thing shakedown leaves behind on purpose; remove the
// directory to reclaim the space (about 50 MB a template), and the next
// run builds what it needs. The template holds no password: every Env
// still sets a random one of its own, and only a SCRAM verifier of it
// ever reaches the server. Each Env's servers live in a directory of its
// own, in memory (/dev/shm) when that is a tmpfs with 1 GiB free, else in
// os.TempDir(); SHAKEDOWN_PROCESS_DIR ([EnvProcessDir]) chooses another
// parent. On the development machine (2 cores) a local Postgres is ready
// in 0.14 to 0.25 s on tmpfs, where a copy of the template on ext4 took
// 1.0 to 1.2 s (load 4), and in 4.8 s on the run that builds the template:
//
//	go test ./harness/ -run '^$' -bench 'Ready/postgres/process' -benchtime 3x
//
// Images default to postgres:16-alpine and redis:7-alpine; [WithImage]
// or SHAKEDOWN_POSTGRES_IMAGE / SHAKEDOWN_REDIS_IMAGE choose others,
// such as the ones harness/images/build.sh builds without a registry.
// Ports are published on 127.0.0.1 only. Because testcontainers' reaper
// (Ryuk) needs a registry, New sets TESTCONTAINERS_RYUK_DISABLED=true
// when the variable is unset, and shakedown reaps by label instead; it
// also sets TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 when unset, since the
// ports it publishes are on loopback only.
//
// # Options
//
// Options are values of small interface types, one per constructor: an
// [EnvOption] configures [New], a [LinkOption] [NewLink] and [StartLink],
// a [PostgresOption] [Env.Postgres] and a [RedisOption] [Env.Redis]. An
// option meant for one constructor does not compile where another's is
// expected ([WithBackend] cannot configure a Link, [WithUser] cannot
// configure Redis). An option that means the same for two constructors
// satisfies both: [WithSeed] and [WithLogger] are [SharedOption]s (Env
// and Link), [WithImage] and [WithStartTimeout] are [DependencyOption]s
// (Postgres and Redis):
//
//	env := harness.New(t, harness.WithSeed(42), harness.WithBackend(harness.Process))
//	db := env.Postgres("db", harness.WithImage("postgres:15"), harness.WithDatabase("shop"))
//	l := harness.NewLink(t, "api", srv.Listener.Addr().String(), harness.WithSeed(42))
//
// # Seeds
//
// Every Env has a seed ([WithSeed], SHAKEDOWN_SEED, or random) that it
// logs with its run ID; each Link's randomness derives from it, so a
// failing run replays with SHAKEDOWN_SEED=<seed>.
//
// # Logs
//
// The Env logs what it starts and every fault it applies or reverts to
// the test log (or to [WithLogger]'s logger), one line per record,
// attributed to the call that caused it: the test's line that called
// env.Postgres, db.Crash or env.Reset, or sim's line that applied a fault
// of a schedule, never a line inside harness unless nothing outside it
// did (a Link's own goroutines):
//
//	checkout_test.go:41: postgres ready run=3f2a9c1b7e04 dependency=db addr=127.0.0.1:40113 ...
//	checkout_test.go:52: fault applied run=3f2a9c1b7e04 link=db fault=latency(100ms) fault_id=0
package harness
