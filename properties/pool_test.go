package properties_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties/pgxcheck"
	"github.com/shakedown/shakedown/properties/redischeck"
	"github.com/shakedown/shakedown/properties/sqlcheck"
	"github.com/shakedown/shakedown/sim"
)

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
	var d sim.Dials
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
	_, err = redischeck.Pool("cache", nil).Sample(t.Context())
	require.ErrorContains(t, err, "client is nil")
	_, err = pgxcheck.Pool("pg", nil).Sample(t.Context())
	require.ErrorContains(t, err, "pool is nil")
}
