package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/toxics"
)

// DataStep is a target for data steps ([toxics.Data]) on a real
// dependency: applying one runs the step's apply statements on the
// dependency, reverting it runs its revert statements, so a schedule
// places and shrinks "rename a column, then rename it back" or "null a
// column, then restore it" in time like any other fault. Make one with
// [Postgres.Statements] or [Redis.Commands] and give it to the runner
// beside the Env's dependencies; it takes no other kind.
//
// The statements run one by one, in order, on a connection of their own
// to the server itself (bypassing the Link, so link faults do not stop
// them). The first that fails stops the rest and is the error of Apply
// or revert, naming the target, the dependency and the statement; a
// failed Apply has changed what the statements before it changed.
type DataStep struct {
	name, dep string
	apply     []string
	revert    []string
	run       func(ctx context.Context, stmt string) error
}

// Statements returns a data step called name (the target's name in
// schedules) that runs the SQL statements apply when a data step begins
// and revert when it ends, each with the simple query protocol on a new
// connection to the server.
func (p *Postgres) Statements(name string, apply, revert []string) *DataStep {
	return &DataStep{name: name, dep: p.Name(), apply: apply, revert: revert,
		run: func(ctx context.Context, stmt string) error {
			c, err := pgx.Connect(ctx, p.DirectDSN())
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			_, err = c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
			return err
		}}
}

// Commands returns a data step called name that runs the Redis commands
// apply when a data step begins and revert when it ends, each a command
// line of space-separated words ("SET price:1 oops"), on a new connection
// to the server. An error reply is an error.
func (r *Redis) Commands(name string, apply, revert []string) *DataStep {
	return &DataStep{name: name, dep: r.Name(), apply: apply, revert: revert,
		run: func(ctx context.Context, cmd string) error {
			o := r.Options()
			o.Addr = r.DirectAddr()
			o.MaxRetries = -1
			o.PoolSize = 1
			o.DisableIdentity = true
			c := goredis.NewClient(o)
			defer c.Close()
			args := splitWords(cmd)
			if len(args) == 0 {
				return errors.New("empty command")
			}
			return c.Do(ctx, args...).Err()
		}}
}

func splitWords(s string) []any {
	var out []any
	word := []byte(nil)
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			if word != nil {
				out = append(out, string(word))
				word = nil
			}
			continue
		}
		word = append(word, s[i])
	}
	if word != nil {
		out = append(out, string(word))
	}
	return out
}

// Name is the step's name in schedules.
func (s *DataStep) Name() string { return s.name }

// Supports reports whether k is [toxics.KindData].
func (s *DataStep) Supports(k toxics.Kind) bool { return k == toxics.KindData }

// Apply runs the apply statements and returns the function that runs the
// revert statements (once; later calls do nothing).
func (s *DataStep) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f == nil {
		return nil, fmt.Errorf("harness: data step %q on %q: apply: the fault is nil", s.name, s.dep)
	}
	if _, ok := f.(toxics.Data); !ok {
		return nil, fmt.Errorf("harness: data step %q on %q: apply %s: a data step takes only %s", s.name, s.dep, f, toxics.KindData)
	}
	if err := s.runAll(ctx, "apply", s.apply); err != nil {
		return nil, err
	}
	var once sync.Once
	var rerr error
	return func(ctx context.Context) error {
		if ctx == nil {
			ctx = context.Background()
		}
		once.Do(func() {
			rerr = s.runAll(ctx, "revert", s.revert)
		})
		return rerr
	}, nil
}

func (s *DataStep) runAll(ctx context.Context, what string, stmts []string) error {
	for i, stmt := range stmts {
		if err := s.run(ctx, stmt); err != nil {
			return fmt.Errorf("harness: data step %q on %q: %s: statement %d %q: %w", s.name, s.dep, what, i+1, stmt, err)
		}
	}
	return nil
}
