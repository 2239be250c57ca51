// Package checkout is a small HTTP service under test: orders in Postgres,
// a stock cache in Redis, in two variants that differ only in how they
// call those two dependencies. It is what shakedown's resilience suite
// breaks, and what a newcomer reads to see the patterns that survive.
//
// # The service
//
//	POST /orders        {"item":"apple","qty":2} -> 201 {"id":"..."}
//	GET  /stock/{item}  -> 200 {"item":"apple","stock":41}
//	GET  /orders/{id}   -> 200 {"id":"...","item":"apple","qty":2}
//
// An order first reserves stock in Redis (one atomic script), then is
// recorded in Postgres under an ID the service chose. A stock lookup reads
// Redis only, an order lookup Postgres only. Each request is logged with
// log/slog, carrying the trace ID of its W3C traceparent header.
//
// # Two variants
//
// [Naive] is how services are often first written: no timeouts anywhere
// (pgx's default pool with no connect timeout, go-redis with its read and
// write timeouts switched off, an http.Server without timeouts), default
// pool sizes, no breaker, no retries. It passes every functional test,
// and a dependency that stops answering (rather than refusing) holds every
// request, and then every pool connection, for as long as it lasts. Every
// error a dependency answers is passed on: one serialization failure from
// Postgres, or one LOADING from Redis, and the order is refused (503) and
// lost.
//
// [Resilient] runs every call through a guard (guard.go) built with
// failsafe-go, one per dependency:
//
//   - a bulkhead: at most N calls in flight; the rest wait
//     [Limits].QueueWait and are turned away;
//   - bounded retries with exponential backoff and jitter, of only what is
//     safe to retry: an idempotent call (the insert of an order is, because
//     its ID makes a second insert a no-op), or any call that failed with
//     an error proving it had no effect (see below). The jitter comes from
//     a generator seeded with [Config].Seed, not from failsafe's own, which
//     draws from the global math/rand;
//   - a circuit breaker that fails calls at once while the dependency is
//     failing, and probes it again after a delay. It counts every failed
//     attempt, the protocol errors below included;
//   - a timeout on every attempt, and a deadline on the whole request;
//   - sized pools, with go-redis's own retries off so that attempts do not
//     multiply, and its ContextTimeoutEnabled on so that deadlines reach
//     the socket;
//   - a degraded answer when the cache is unavailable: a stock lookup
//     answers 200 with "stock": null and the header X-Degraded: 1, and an
//     order is taken against Postgres alone (without a stock check, so the
//     stock level can drift; the orders table is the truth).
//
// All the numbers are in [Limits], with [DefaultLimits] for a latency
// budget well under a second.
//
// # Errors the dependencies answer
//
// A dependency that answers with an error is not a network fault: the
// answer says whether another attempt can help, and whether the call had
// any effect. The resilient variant reads it (safeToRetry in guard.go);
// every retry stays within [Limits].Retries and the request's deadline.
//
//   - Postgres 40001 (serialization failure) and 40P01 (deadlock): the
//     server rolled the transaction back, and asks the client to retry it.
//     Retried with backoff, for any call.
//   - Postgres 57P01 (admin shutdown): the server ended the session under
//     the statement, so its outcome is unknown. pgx drops the connection;
//     an idempotent call (the order's insert, an order lookup) is retried
//     on a new one, any other is not.
//   - Postgres 53300 (too many connections), when a connection opens: no
//     statement was sent. Retried after a backoff, so as not to take the
//     slot another client is waiting for.
//   - Redis LOADING (loading its data after a restart) and BUSY (a script
//     running): Redis refused the command without running it. Retried with
//     backoff, even the stock reservation, which is not idempotent.
//   - Redis READONLY (a replica) and OOM (out of memory): the write was
//     refused, and another attempt moments later would be refused too.
//     Never retried; the answer is degraded, as when Redis is down (the
//     order is taken without a reservation, the stock lookup answers
//     "stock": null).
//
// The breaker counts each of these as a failed attempt, retried or not:
// a Postgres that keeps refusing connections or ending sessions, or a
// Redis that stays read-only, is failing, and is then failed fast.
// Serialization failures and deadlocks count too, so heavy contention
// on a share of the statements can open the Postgres breaker: orders then
// fail fast until its probes succeed, which the suite allows during the
// fault and within the recovery bound after it.
//
// TestProtocolErrors (protocol_test.go) shows each case for both
// variants, through the real Links of a real Postgres and Redis.
//
// # What the suite taught this code
//
// Each of these was found by the resilience suite breaking an earlier
// version of the resilient variant, and each fix is a comment in the code:
//
//   - failsafe-go's timeout cancels the attempt's context but sets no
//     deadline, and pgxpool's ping of an idle connection (and go-redis's
//     socket deadlines) only honour a deadline: a ping into a network that
//     eats replies held a connection for a minute. Each attempt now gets a
//     deadline of its own, and the pool a PingTimeout.
//   - pgx closes a connection whose query a timeout cut short in the
//     background: it sends the server a cancel request and waits up to
//     15 s for an answer a faulty network may never deliver, and the
//     connection keeps its pool slot meanwhile. The pool is twice the
//     bulkhead's size, so those slots cannot starve the callers, and
//     [Service.ClosingPostgresConns] lets a sampler tell them from
//     connections in use.
//   - Each connection a timeout cut short costs the server two new
//     backends (the cancel request's connection, and the pool's
//     replacement), so on a slow server every timed-out statement made it
//     slower: in loaded runs that missed Recovery, Postgres did 4 to 10
//     times the work after the heal that it did in the runs that held. The
//     server now bounds each statement itself (statement_timeout, three
//     quarters of an attempt): a slow statement fails with 57014 and its
//     connection stays in the pool; the attempt's own deadline still ends
//     one whose network is gone. [Service.Migrate], set-up rather than
//     serving, lifts the bound.
//   - A Postgres connection costs a server process and several round trips
//     to open, more than one 200 ms attempt on a loaded machine; pgxpool
//     finishes a connect in the background when its caller gives up, so
//     [Limits].ConnectTimeout is longer than an attempt.
//   - The breaker once dropped the Postgres pool each time it opened, a
//     failed probe's reopening included, since a fault may have cut the
//     connections without a word. That threw away the connection each
//     probe had started: with connects slower than an attempt (a loaded
//     machine), no probe found one ready, and the service did not recover
//     after a pause until the machine was quiet again. Now nothing is
//     dropped: a connection idle since the breaker opened is pinged
//     before its next use, and a live one (as most are after a pause or
//     a partition) is kept (TestRecoversWhenConnectsOutlastAnAttempt,
//     recovery_test.go).
//
// # Using it
//
// Point the service at the Links of a harness.Env, so that faults can be
// put between the service and its dependencies:
//
//	env := harness.New(t)
//	db, cache := env.Postgres("db"), env.Redis("cache")
//	svc, err := checkout.New(checkout.Config{
//		Variant:  checkout.Resilient,
//		Postgres: db.PoolConfig(),
//		Redis:    cache.Options(),
//	})
//	...
//	err = svc.Migrate(ctx)
//	err = svc.Restock(ctx, "apple", 1000)
//	ts := httptest.NewUnstartedServer(nil)
//	ts.Config = svc.Server()
//	ts.Start()
//
// [Service.Postgres] and [Service.Redis] expose the pools, for samplers of
// their statistics.
//
// # The resilience suite
//
// resilience_test.go runs a workload of orders and stock lookups against
// both variants while generated schedules of faults hit Postgres and
// Redis (network faults, pauses, and the protocol errors above, on a
// drawn share of requests), and checks: p99 latency stays under a bound during faults, the
// service recovers soon after the last fault heals, no pool is exhausted,
// no acknowledged order is lost, and a failing dependency does not take
// the other endpoints down with it. The naive variant is caught, with the
// smallest schedule that still breaks it and a report; the resilient
// variant passes; and the resilient variant with one bug, a Postgres
// breaker that stays open for a minute (Limits.BreakerDelay left at the
// breaker libraries' default), is caught by the recovery claim. Run it with
//
//	make check
//
// or go test -v -run Resilience ./examples/checkout/.
package checkout
