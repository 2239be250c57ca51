package harness

import (
	"log/slog"
	"time"
)

// EnvOption configures [New].
type EnvOption interface{ applyEnv(*envConfig) }

// LinkOption configures [NewLink] and [StartLink].
type LinkOption interface{ applyLink(*linkConfig) }

// PostgresOption configures [Env.Postgres].
type PostgresOption interface{ applyPostgres(*postgresConfig) }

// RedisOption configures [Env.Redis].
type RedisOption interface{ applyRedis(*redisConfig) }

// ServiceOption configures [Env.Address] and [Env.Container]: the Link
// in front of a server the Env did not start from a known image.
type ServiceOption interface{ applyService(*serviceConfig) }

// SharedOption is an option that means the same for an [Env] and a
// [Link]: it is both an [EnvOption] and a [LinkOption].
type SharedOption interface {
	EnvOption
	LinkOption
}

// DependencyOption configures both [Env.Postgres] and [Env.Redis]: it is
// both a [PostgresOption] and a [RedisOption].
type DependencyOption interface {
	PostgresOption
	RedisOption
}

type envConfig struct {
	seed    *int64
	logger  *slog.Logger
	backend *Backend
}

type linkConfig struct {
	seed     int64
	logger   *slog.Logger
	protocol string
}

type serviceConfig struct {
	protocol string
}

// serviceOptions applies opts and checks what they set.
func serviceOptions(opts []ServiceOption) (serviceConfig, error) {
	var c serviceConfig
	for _, o := range opts {
		if o != nil {
			o.applyService(&c)
		}
	}
	return c, checkProtocol(c.protocol)
}

type depConfig struct {
	image        string
	startTimeout time.Duration
}

type postgresConfig struct {
	depConfig
	user, database string
}

type redisConfig struct {
	depConfig
}

// WithSeed sets the seed every random draw derives from.
//
// For an Env it is the seed of the run; without it the seed comes from
// the SHAKEDOWN_SEED environment variable, or is drawn at random. Either
// way the Env logs it so a failing run can be replayed, and each of its
// Links gets a seed derived from it and the dependency's name.
//
// For a Link it seeds latency jitter, which bits corruption flips and
// slicer sizes. Each fault draws from its own source, derived from the
// seed and the fault's position in the order of Apply calls, and every
// connection starts that fault's sequence afresh, so a run with one seed
// draws the same numbers. A Link's default seed is 0.
func WithSeed(seed int64) SharedOption { return seedOption(seed) }

type seedOption int64

func (o seedOption) applyEnv(c *envConfig)   { s := int64(o); c.seed = &s }
func (o seedOption) applyLink(c *linkConfig) { c.seed = int64(o) }

// WithLogger sets where logs go; nil keeps the default.
//
// An Env logs its dependencies' starts and node faults (Info), and its
// Links log to the same logger; by default it writes to the test log,
// each line attributed to the call that caused it (see [Env.Logger]).
//
// A Link logs connections (Debug) and faults (Info); by default it
// discards everything.
func WithLogger(l *slog.Logger) SharedOption { return loggerOption{l} }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) applyEnv(c *envConfig) { c.logger = o.l }
func (o loggerOption) applyLink(c *linkConfig) {
	if o.l != nil {
		c.logger = o.l
	}
}

// WithBackend selects how Postgres and Redis run. Without it the
// SHAKEDOWN_BACKEND environment variable decides, and [Auto] when that is
// unset.
func WithBackend(b Backend) EnvOption { return backendOption(b) }

type backendOption Backend

func (o backendOption) applyEnv(c *envConfig) { b := Backend(o); c.backend = &b }

// WithImage runs the dependency from image instead of the default (or
// the one SHAKEDOWN_POSTGRES_IMAGE / SHAKEDOWN_REDIS_IMAGE names). The
// image must behave like the official one: for Postgres honour
// POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB; for Redis accept
// redis-server's flags as its command. It has no effect on the process
// backend.
func WithImage(image string) DependencyOption {
	return depOption(func(c *depConfig) { c.image = image })
}

// WithStartTimeout bounds the first start and every later wait for
// readiness (default 2 minutes).
func WithStartTimeout(d time.Duration) DependencyOption {
	return depOption(func(c *depConfig) { c.startTimeout = d })
}

type depOption func(*depConfig)

func (o depOption) applyPostgres(c *postgresConfig) { o(&c.depConfig) }
func (o depOption) applyRedis(c *redisConfig)       { o(&c.depConfig) }

// WithUser sets the Postgres user (default "shakedown"). The password is
// always random, new for every Env.
func WithUser(name string) PostgresOption {
	return postgresOption(func(c *postgresConfig) { c.user = name })
}

// WithDatabase sets the database created for the test (default
// "shakedown").
func WithDatabase(name string) PostgresOption {
	return postgresOption(func(c *postgresConfig) { c.database = name })
}

type postgresOption func(*postgresConfig)

func (o postgresOption) applyPostgres(c *postgresConfig) { o(c) }
