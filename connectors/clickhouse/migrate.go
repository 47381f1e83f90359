package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chschema "github.com/fleetstream/fleetstream/schemas/clickhouse"
)

// Migrate creates database and applies the schemas/clickhouse migrations it
// has not applied yet, in version order, recording each in
// schema_migrations. Running it again is a no-op. It fails when an applied
// migration's file changed since: released migrations are immutable.
func Migrate(ctx context.Context, conn driver.Conn, database string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migrations, err := chschema.Migrations(database)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+database); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	// The ledger is created here, not by a migration: Migrate reads it
	// before applying anything. Two Migrate runs racing both insert the
	// same row, which ReplacingMergeTree collapses.
	ledger := database + ".schema_migrations"
	err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+ledger+` (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree() ORDER BY version`)
	if err != nil {
		return fmt.Errorf("create %s: %w", ledger, err)
	}
	applied, err := appliedMigrations(ctx, conn, ledger)
	if err != nil {
		return err
	}

	known := map[uint32]bool{}
	for _, m := range migrations {
		known[m.Version] = true
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return fmt.Errorf("migration %s was changed after it was applied to %s (checksum %s, applied %s): "+
					"restore the released file and put the change in a new migration", m.Name, database, m.Checksum, sum)
			}
			continue
		}
		began := time.Now()
		for i, stmt := range m.Statements {
			if err := execMigration(ctx, conn, stmt); err != nil {
				return fmt.Errorf("migration %s statement %d on %s: %w", m.Name, i+1, database, err)
			}
		}
		if err := recordMigration(ctx, conn, ledger, m); err != nil {
			return err
		}
		logger.Info("applied ClickHouse migration", "database", database, "migration", m.Name, "took", time.Since(began).Round(time.Millisecond))
	}
	for v := range applied {
		if !known[v] {
			logger.Warn("ClickHouse database has a migration this build does not know: a newer fleetstream migrated it",
				"database", database, "version", v)
		}
	}
	return nil
}

// appliedMigrations maps applied versions to their recorded checksums.
func appliedMigrations(ctx context.Context, conn driver.Conn, ledger string) (map[uint32]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM "+ledger+" FINAL")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ledger, err)
	}
	defer rows.Close()
	applied := map[uint32]string{}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("read %s: %w", ledger, err)
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", ledger, err)
	}
	return applied, nil
}

func recordMigration(ctx context.Context, conn driver.Conn, ledger string, m chschema.Migration) error {
	// A block insert: 18.16 does not answer INSERT ... VALUES sent as a query.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+ledger+" (version, name, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := b.Append(m.Version, m.Name, m.Checksum, time.Now()); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	return nil
}

// addColumnIfNotExists matches "ALTER TABLE db.t ADD COLUMN IF NOT EXISTS
// name type": 18.16 has no IF NOT EXISTS there, so Migrate looks the column
// up itself and sends the ALTER without it.
var addColumnIfNotExists = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+([A-Za-z0-9_]+)\s+(.+)$`)

// execMigration runs one migration statement, so that every statement can
// run twice on every ClickHouse version (see schemas/clickhouse).
func execMigration(ctx context.Context, conn driver.Conn, stmt string) error {
	m := addColumnIfNotExists.FindStringSubmatch(stmt)
	if m == nil {
		return conn.Exec(ctx, stmt)
	}
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", m[1], m[2], m[3]).Scan(&n)
	if err != nil {
		return fmt.Errorf("look up column %s of %s.%s: %w", m[3], m[1], m[2], err)
	}
	if n > 0 {
		return nil
	}
	return conn.Exec(ctx, "ALTER TABLE "+m[1]+"."+m[2]+" ADD COLUMN "+m[3]+" "+m[4])
}
