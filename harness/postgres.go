package harness

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/shakedown/shakedown/toxics"
)

// Default images, used when neither [WithImage] nor the environment
// variables SHAKEDOWN_POSTGRES_IMAGE / SHAKEDOWN_REDIS_IMAGE choose one.
const (
	DefaultPostgresImage = "postgres:16-alpine"
	DefaultRedisImage    = "redis:7-alpine"
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Postgres is a Postgres server, in a container or a local process,
// behind a [Link]. Connect through the Link with DSN, ConnConfig or
// PoolConfig; the node-fault methods come from the embedded [Node].
type Postgres struct {
	*Node
	user, password, database string
}

// Postgres starts a Postgres server called name, fronted by a Link, and
// returns when it answers queries. The user and database default to
// "shakedown" and the password is random. It stops the test with
// t.Fatalf if the server cannot start, and skips it when neither Docker
// nor the postgres binaries are available (see [Backend]).
func (e *Env) Postgres(name string, opts ...PostgresOption) *Postgres {
	e.t.Helper()
	cfg := postgresConfig{depConfig: depConfig{image: os.Getenv(EnvPostgresImage)}, user: "shakedown", database: "shakedown"}
	for _, o := range opts {
		if o != nil {
			o.applyPostgres(&cfg)
		}
	}
	if !identRE.MatchString(cfg.user) {
		e.fatalf("harness: Postgres(%q): user %q: want a lower-case identifier ([a-z_][a-z0-9_]*, at most 63)", name, cfg.user)
	}
	if !identRE.MatchString(cfg.database) {
		e.fatalf("harness: Postgres(%q): database %q: want a lower-case identifier ([a-z_][a-z0-9_]*, at most 63)", name, cfg.database)
	}
	p := &Postgres{user: cfg.user, password: randomHex(16), database: cfg.database}
	p.Node = e.startServer("Postgres", name, &cfg.depConfig, DefaultPostgresImage, []string{"initdb", "postgres"},
		func(ctx context.Context, docker bool) (*Node, error) {
			if docker {
				return e.postgresContainer(ctx, name, cfg, p)
			}
			return e.postgresProcess(ctx, name, cfg, p)
		})
	if p.Node == nil {
		return nil
	}
	p.link.speak(toxics.ProtocolPostgres)
	e.add(p)
	return p
}

func (e *Env) postgresContainer(ctx context.Context, name string, cfg postgresConfig, p *Postgres) (*Node, error) {
	const port = "5432/tcp"
	opts, err := e.docker.customizers(ctx, name, port)
	if err != nil {
		return nil, err
	}
	ready := p.readyOn(p.database)
	opts = append(opts,
		postgres.WithUsername(p.user),
		postgres.WithPassword(p.password),
		postgres.WithDatabase(p.database),
		testcontainers.WithWaitStrategyAndDeadline(cfg.startTimeout, readyStrategy{port: port, ready: ready}),
	)
	ctr, err := postgres.Run(ctx, cfg.image, opts...)
	var c testcontainers.Container
	if ctr != nil {
		c = ctr.Container
	}
	return e.moduleNode(ctx, name, port, cfg.depConfig, c, err, ready)
}

// readyOn returns the readiness check: connect as the user to database
// db and run SELECT 1.
func (p *Postgres) readyOn(db string) func(context.Context, string) error {
	return func(ctx context.Context, addr string) error {
		conn, err := pgx.Connect(ctx, p.dsn(addr, db))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var one int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
}

func (p *Postgres) dsn(addr, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.user, p.password),
		Host:     addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// DSN is the connection URL through the Link, with sslmode=disable.
func (p *Postgres) DSN() string { return p.dsn(p.Addr(), p.database) }

// DirectDSN is the connection URL to the server itself, bypassing the
// Link. It changes when a container restarts.
func (p *Postgres) DirectDSN() string { return p.dsn(p.DirectAddr(), p.database) }

// ConnConfig is a pgx configuration for DSN; set timeouts on it as the
// service under test would.
func (p *Postgres) ConnConfig() *pgx.ConnConfig {
	c, err := pgx.ParseConfig(p.DSN())
	if err != nil {
		// The DSN is built from validated parts; this is a bug.
		panic(fmt.Sprintf("harness: Postgres %s: parse own DSN: %v", p.name, err))
	}
	return c
}

// PoolConfig is a pgxpool configuration for DSN.
func (p *Postgres) PoolConfig() *pgxpool.Config {
	c, err := pgxpool.ParseConfig(p.DSN())
	if err != nil {
		panic(fmt.Sprintf("harness: Postgres %s: parse own DSN: %v", p.name, err))
	}
	return c
}

// User is the Postgres user.
func (p *Postgres) User() string { return p.user }

// Password is the user's password, random for every Env.
func (p *Postgres) Password() string { return p.password }

// Database is the test's database.
func (p *Postgres) Database() string { return p.database }
