package sim

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Dials counts the connections a client opens, for clients whose pool
// keeps no such count (net/http, database/sql). Wrap the client's dial
// function with DialContext (an http.Transport's DialContext, go-redis'
// Options.Dialer, pgconn's DialFunc) or its driver.Connector with
// Connector, and sample it with Sampler. The zero value is ready to use.
type Dials struct {
	dials, failed, open atomic.Int64
}

// DialFunc is the dial function of net.Dialer.DialContext's shape.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialContext wraps dial (nil means a plain net.Dialer) so that every dial
// and every close of a connection it made is counted.
func (d *Dials) DialContext(dial DialFunc) DialFunc {
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.dials.Add(1)
		c, err := dial(ctx, network, addr)
		if err != nil {
			d.failed.Add(1)
			return nil, err
		}
		d.open.Add(1)
		return &countedConn{Conn: c, open: &d.open}, nil
	}
}

type countedConn struct {
	net.Conn
	once sync.Once
	open *atomic.Int64
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// Connector wraps a database/sql connector so that every connection it
// opens is counted: sql.OpenDB(dials.Connector(c)).
func (d *Dials) Connector(c driver.Connector) driver.Connector {
	return &countedConnector{Connector: c, d: d}
}

type countedConnector struct {
	driver.Connector
	d *Dials
}

func (c *countedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.d.dials.Add(1)
	if c.Connector == nil {
		c.d.failed.Add(1)
		return nil, errors.New("sim: Dials.Connector: the wrapped connector is nil")
	}
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		c.d.failed.Add(1)
	}
	return conn, err
}

// Count returns the dials so far, those that failed, and the connections
// open now (known only for DialContext).
func (d *Dials) Count() (dials, failed, open int64) {
	return d.dials.Load(), d.failed.Load(), d.open.Load()
}

// Sampler samples the counts as <name>.dials, <name>.dial_errors and
// <name>.open.
func (d *Dials) Sampler(name string) Sampler {
	return SamplerFunc(name, func(context.Context) (map[string]float64, error) {
		dials, failed, open := d.Count()
		return map[string]float64{"dials": float64(dials), "dial_errors": float64(failed), "open": float64(open)}, nil
	})
}
