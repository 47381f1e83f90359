// Package clickhouse is fleetstream's ClickHouse edge: opening connections,
// applying the schemas/clickhouse migrations, the sink that projects
// fleet.events.v1 into the read model, and every query the API runs on it.
// All SQL lives here, written for ClickHouse 18.16 and current ClickHouse
// alike: native protocol, explicit column lists in INSERT, no
// string-valued settings, no PREWHERE (wrong under FINAL).
package clickhouse

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chschema "github.com/fleetstream/fleetstream/schemas/clickhouse"
)

// DefaultDatabase is the read model's database unless configured otherwise.
const DefaultDatabase = "fleetstream"

// Options says how to reach ClickHouse.
type Options struct {
	// Addr is host:port of the native protocol (9000 by default on a
	// server), never the HTTP port.
	Addr string
	// Database is the session's default database; empty means the user's
	// default. Every query here names its database explicitly, so this
	// matters only for users restricted to one database. Leave it empty
	// while that database does not exist yet: Migrate creates it.
	Database string
	Username string
	Password string
	// TLS, when not nil, encrypts the connection: point Addr at the
	// server's secure native port (tcp_port_secure, 9440 by default).
	TLS *tls.Config
}

// Open connects with the native protocol and pings the server, so a wrong
// address or credentials fail here rather than at the first query.
func Open(ctx context.Context, opts Options) (driver.Conn, error) {
	if opts.Addr == "" {
		return nil, fmt.Errorf("clickhouse: no address: give the native protocol address, host:9000")
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{opts.Addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: opts.Database, Username: opts.Username, Password: opts.Password},
		DialTimeout: 10 * time.Second,
		TLS:         opts.TLS,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", opts.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: ping: %w (is it the native protocol port, and are the credentials right?)", opts.Addr, err)
	}
	return conn, nil
}

// table returns database.name after checking the database name, which is
// interpolated into SQL.
func table(database, name string) (string, error) {
	if err := chschema.ValidateDatabase(database); err != nil {
		return "", err
	}
	return database + "." + name, nil
}
