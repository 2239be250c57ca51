package harness

import (
	"context"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Figures of issues 3 and 13. Run with a small -benchtime, for example:
//
//	SHAKEDOWN_POSTGRES_IMAGE=shakedown.local/postgres:15 SHAKEDOWN_REDIS_IMAGE=shakedown.local/redis:7 \
//	go test ./harness/ -run '^$' -bench 'Ready|Reset' -benchtime 3x
//
// Timings on a shared machine move with its load: note the load average
// beside them (cat /proc/loadavg).

// benchEnv runs body with a fresh Env per iteration; only body is timed,
// the teardown is not.
func benchEnv(b *testing.B, backend Backend, body func(e *Env)) {
	for i := 0; i < b.N; i++ {
		benchOnce(b, backend, true, body)
	}
}

// benchOnce runs body once with a fresh Env, timed or not; the teardown
// is never timed.
func benchOnce(b *testing.B, backend Backend, timed bool, body func(e *Env)) {
	f := &fakeTB{TB: b}
	if timed {
		b.StartTimer()
	}
	stop := catch(func() { body(New(f, WithBackend(backend))) })
	if timed {
		b.StopTimer()
	}
	f.teardown()
	if stop != nil {
		if stop.kind == "skip" {
			b.Skip(stop.msg)
		}
		b.Fatal(stop.msg)
	}
}

// BenchmarkReady is the time from asking for a dependency to its
// answering a query or PING through nothing but its own start. For a
// Postgres process, "postgres/process" copies a template built before
// the timing starts (the usual case: the template stays in the cache),
// and "postgres/process-cold" builds it in an empty cache every time
// (a new machine, or new binaries).
func BenchmarkReady(b *testing.B) {
	for _, backend := range backends {
		b.Run("postgres/"+backend.String(), func(b *testing.B) {
			b.StopTimer()
			if backend == Process {
				benchOnce(b, backend, false, func(e *Env) { e.Postgres("pg") }) // builds the template
			}
			benchEnv(b, backend, func(e *Env) { e.Postgres("pg") })
		})
		if backend == Process {
			b.Run("postgres/process-cold", func(b *testing.B) {
				b.StopTimer()
				for i := 0; i < b.N; i++ {
					b.Setenv(EnvCacheDir, b.TempDir())
					benchOnce(b, backend, true, func(e *Env) { e.Postgres("pg") })
				}
			})
		}
		b.Run("redis/"+backend.String(), func(b *testing.B) {
			b.StopTimer()
			benchEnv(b, backend, func(e *Env) { e.Redis("cache") })
		})
	}
}

// BenchmarkReset times Env.Reset after a link fault (latency on the
// Link), after nothing, and after a crash (start and readiness included).
func BenchmarkReset(b *testing.B) {
	for _, backend := range backends {
		for _, dep := range []string{"postgres", "redis"} {
			for _, c := range []struct {
				name  string
				fault toxics.Fault
			}{
				{"clean", nil},
				{"link-fault", toxics.Latency{Delay: time.Second}},
				{"crash", toxics.Crash{}},
			} {
				b.Run(dep+"/"+backend.String()+"/"+c.name, func(b *testing.B) {
					b.StopTimer()
					e := New(b, WithBackend(backend))
					var d Dependency
					if dep == "postgres" {
						d = e.Postgres("pg")
					} else {
						d = e.Redis("cache")
					}
					ctx := context.Background()
					for i := 0; i < b.N; i++ {
						if c.fault != nil {
							if _, err := d.Apply(ctx, c.fault); err != nil {
								b.Fatal(err)
							}
						}
						b.StartTimer()
						err := e.Reset(ctx)
						b.StopTimer()
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
