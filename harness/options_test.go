package harness

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The option types, checked by the compiler. Each option is a value of an
// interface type with an unexported method, so it can only be passed to
// the constructors it is meant for:
//
//	New(t, opts ...EnvOption)                  WithSeed, WithLogger, WithBackend
//	NewLink(t, name, up, opts ...LinkOption)   WithSeed, WithLogger
//	env.Postgres(name, opts ...PostgresOption) WithImage, WithStartTimeout, WithUser, WithDatabase
//	env.Redis(name, opts ...RedisOption)       WithImage, WithStartTimeout
var (
	_ EnvOption  = WithSeed(1)         // SharedOption: an Env option...
	_ LinkOption = WithSeed(1)         // ...and a Link option
	_ EnvOption  = WithLogger(nil)     // SharedOption
	_ LinkOption = WithLogger(nil)     // SharedOption
	_ EnvOption  = WithBackend(Docker) // Env only

	_ PostgresOption = WithImage("postgres:16-alpine") // DependencyOption: Postgres...
	_ RedisOption    = WithImage("redis:7-alpine")     // ...and Redis
	_ PostgresOption = WithStartTimeout(time.Minute)   // DependencyOption
	_ RedisOption    = WithStartTimeout(time.Minute)   // DependencyOption
	_ PostgresOption = WithUser("app")                 // Postgres only
	_ PostgresOption = WithDatabase("app")             // Postgres only
)

// These do not compile, which is the point (uncomment one to see):
//
//	_ LinkOption  = WithBackend(Docker) // EnvOption does not implement LinkOption (missing method applyLink)
//	_ EnvOption   = WithImage("x")      // DependencyOption does not implement EnvOption (missing method applyEnv)
//	_ RedisOption = WithUser("app")     // PostgresOption does not implement RedisOption (missing method applyRedis)
//	_ EnvOption   = LinkOption(nil)     // LinkOption does not implement EnvOption (missing method applyEnv)
//
// TestOptionTypes checks the same at run time from the constructors'
// declared result types, including what must not compile.

func TestOptionTypes(t *testing.T) {
	env := reflect.TypeFor[EnvOption]()
	link := reflect.TypeFor[LinkOption]()
	pg := reflect.TypeFor[PostgresOption]()
	rd := reflect.TypeFor[RedisOption]()
	all := []reflect.Type{env, link, pg, rd}
	cases := []struct {
		name string
		fn   any
		is   []reflect.Type // every option interface it satisfies
	}{
		{"WithSeed", WithSeed, []reflect.Type{env, link}},
		{"WithLogger", WithLogger, []reflect.Type{env, link}},
		{"WithBackend", WithBackend, []reflect.Type{env}},
		{"WithImage", WithImage, []reflect.Type{pg, rd}},
		{"WithStartTimeout", WithStartTimeout, []reflect.Type{pg, rd}},
		{"WithUser", WithUser, []reflect.Type{pg}},
		{"WithDatabase", WithDatabase, []reflect.Type{pg}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := reflect.TypeOf(c.fn).Out(0) // the declared type, what the compiler checks
			for _, i := range all {
				want := false
				for _, j := range c.is {
					want = want || i == j
				}
				require.Equal(t, want, out.Implements(i), "%s() returns %v; implements %v", c.name, out, i)
			}
		})
	}
	// The interfaces themselves are distinct: none is another.
	for _, i := range all {
		for _, j := range all {
			require.Equal(t, i == j, i.Implements(j), "%v implements %v", i, j)
		}
	}
}

// TestOptionsApply checks what each option sets, and that a nil option
// and a nil logger leave the defaults.
func TestOptionsApply(t *testing.T) {
	l := slog.New(slog.DiscardHandler)

	var ec envConfig
	for _, o := range []EnvOption{WithSeed(7), WithLogger(l), WithBackend(Process)} {
		o.applyEnv(&ec)
	}
	require.Equal(t, int64(7), *ec.seed)
	require.Same(t, l, ec.logger)
	require.Equal(t, Process, *ec.backend)

	lc := linkConfig{logger: l}
	WithSeed(9).applyLink(&lc)
	WithLogger(nil).applyLink(&lc)
	require.Equal(t, int64(9), lc.seed)
	require.Same(t, l, lc.logger, "a nil logger keeps the Link's default")

	var pc postgresConfig
	for _, o := range []PostgresOption{WithImage("img"), WithStartTimeout(time.Second), WithUser("u"), WithDatabase("d")} {
		o.applyPostgres(&pc)
	}
	require.Equal(t, postgresConfig{depConfig{"img", time.Second}, "u", "d"}, pc)

	var rc redisConfig
	for _, o := range []RedisOption{WithImage("img"), WithStartTimeout(time.Second)} {
		o.applyRedis(&rc)
	}
	require.Equal(t, redisConfig{depConfig{"img", time.Second}}, rc)

	e := New(t, nil, WithSeed(3))
	require.Equal(t, int64(3), e.Seed())
}
