package properties_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/pgxcheck"
	"github.com/shakedown/shakedown/properties/redischeck"
	"github.com/shakedown/shakedown/properties/sqlcheck"
)

func TestDialsCountsDialsAndCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})

	var d properties.Dials
	dial := d.DialContext(nil)
	a, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	b, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, a.Close())
	_ = a.Close() // a second close is not counted again

	// A dial to a closed port fails and is counted as such.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := closed.Addr().String()
	require.NoError(t, closed.Close())
	_, err = dial(t.Context(), "tcp", addr)
	require.Error(t, err)

	dials, failed, open := d.Count()
	require.Equal(t, [3]int64{3, 1, 1}, [3]int64{dials, failed, open})
	vals, err := d.Sampler("api").Sample(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"dials": 3, "dial_errors": 1, "open": 1}, vals)
	require.NoError(t, b.Close())
}

// nopConnector is a database/sql connector whose connections do nothing.
type nopConnector struct{ fail bool }

func (c nopConnector) Connect(context.Context) (driver.Conn, error) {
	if c.fail {
		return nil, errors.New("refused")
	}
	return nopConn{}, nil
}
func (c nopConnector) Driver() driver.Driver { return nil }

type nopConn struct{}

func (nopConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (nopConn) Close() error                        { return nil }
func (nopConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

func TestSQLPoolAndConnector(t *testing.T) {
	var d properties.Dials
	db := sql.OpenDB(d.Connector(nopConnector{}))
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)

	vals, err := sqlcheck.Pool("db", db).Sample(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1.0, vals["in_use"])
	require.Equal(t, 1.0, vals["open"])
	require.NoError(t, conn.Close())
	vals, err = sqlcheck.Pool("db", db).Sample(t.Context())
	require.NoError(t, err)
	require.Equal(t, 0.0, vals["in_use"])
	require.Equal(t, 1.0, vals["idle"])

	dials, failed, _ := d.Count()
	require.Equal(t, [2]int64{1, 0}, [2]int64{dials, failed})

	bad := sql.OpenDB(d.Connector(nopConnector{fail: true}))
	t.Cleanup(func() { bad.Close() })
	require.Error(t, bad.PingContext(t.Context()))
	dials, failed, _ = d.Count()
	require.Equal(t, failed, dials-1, "the failed connect is counted")

	_, err = sqlcheck.Pool("nil", nil).Sample(t.Context())
	require.ErrorContains(t, err, "db is nil")
	_, err = properties.Counter("calls", nil).Sample(t.Context())
	require.ErrorContains(t, err, "count is nil")
	_, err = redischeck.Pool("cache", nil).Sample(t.Context())
	require.ErrorContains(t, err, "client is nil")
	_, err = pgxcheck.Pool("pg", nil).Sample(t.Context())
	require.ErrorContains(t, err, "pool is nil")
}
