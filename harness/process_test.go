package harness

import (
	"testing"
)

func TestProcessSmoke(t *testing.T) {
	e := New(t, WithBackend(Process))
	p := e.Postgres("pg")
	r := e.Redis("cache")
	t.Log(p.DSN(), r.Addr())
}
