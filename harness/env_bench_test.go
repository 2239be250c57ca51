package harness

import (
	"context"
	"errors"
	"os"
	"slices"
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
// (a new machine, or new binaries); "postgres/process-tempdir" copies
// the template into os.TempDir() instead of the default (see
// EnvProcessDir).
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
			// The same, with the Env's directory on os.TempDir()'s
			// filesystem instead of the default (/dev/shm where it is a
			// roomy tmpfs): what memory saves.
			b.Run("postgres/process-tempdir", func(b *testing.B) {
				b.StopTimer()
				b.Setenv(EnvProcessDir, os.TempDir())
				benchEnv(b, backend, func(e *Env) { e.Postgres("pg") })
			})
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

// benchDep starts dep, "postgres" or "redis", in a new Env of backend.
func benchDep(b *testing.B, backend Backend, dep string) (*Env, Dependency) {
	e := New(b, WithBackend(backend))
	if dep == "postgres" {
		return e, e.Postgres("pg")
	}
	return e, e.Redis("cache")
}

// startingBackoff is poll's backoff before issue 13: 5 ms doubling to
// 50 ms.
var startingBackoff = backoff{first: 5 * time.Millisecond, fast: 50 * time.Millisecond, slow: 50 * time.Millisecond}

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
					e, d := benchDep(b, backend, dep)
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

// BenchmarkResetBackoff times Env.Reset after a crash in Docker with
// issue 13's starting backoff ("before", 5 ms doubling to 50 ms) and
// with [readyBackoff], in turns within one Env, so that the machine's
// load weighs on both alike; it reports each one's median. Run it with
// -benchtime 30x or more: the difference is tens of milliseconds.
func BenchmarkResetBackoff(b *testing.B) {
	before, after := startingBackoff, readyBackoff
	b.Cleanup(func() { readyBackoff = after })
	for _, dep := range []string{"postgres", "redis"} {
		b.Run(dep, func(b *testing.B) {
			b.StopTimer()
			e, d := benchDep(b, Docker, dep)
			ctx := context.Background()
			took := map[string][]time.Duration{}
			for i := 0; i < b.N; i++ {
				turns := []string{"before", "after"}
				if i%2 == 1 {
					turns = []string{"after", "before"}
				}
				for _, turn := range turns {
					readyBackoff = after
					if turn == "before" {
						readyBackoff = before
					}
					if _, err := d.Apply(ctx, toxics.Crash{}); err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					b.StartTimer()
					err := e.Reset(ctx)
					b.StopTimer()
					took[turn] = append(took[turn], time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			readyBackoff = after
			for turn, ds := range took {
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, turn+"-median-ms")
			}
		})
	}
}

// BenchmarkPollLateness is the framework's own part of a wait for
// readiness: how long after a check first could pass poll returns. The
// check passes 50, 170 (a Postgres container's wait after a crash) or
// 500 ms after the wait starts; "before" is issue 13's starting point
// (5 ms doubling to 50 ms), "after" is [readyBackoff].
func BenchmarkPollLateness(b *testing.B) {
	for _, c := range []struct {
		name string
		b    backoff
	}{
		{"before", startingBackoff},
		{"after", readyBackoff},
	} {
		for _, after := range []time.Duration{50 * time.Millisecond, 170 * time.Millisecond, 500 * time.Millisecond} {
			b.Run(c.name+"/"+after.String(), func(b *testing.B) {
				var late time.Duration
				for i := 0; i < b.N; i++ {
					readyAt := time.Now().Add(after)
					err := c.b.poll(context.Background(), func(context.Context) error {
						if time.Now().Before(readyAt) {
							return errors.New("not yet")
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					late += time.Since(readyAt)
				}
				b.ReportMetric(float64(late.Microseconds())/1000/float64(b.N), "late-ms/op")
			})
		}
	}
}
