package clickhouse

import (
	"context"
	"strings"
	"testing"

	chschema "github.com/fleetstream/fleetstream/schemas/clickhouse"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, false)
	migrations, err := chschema.Migrations(db)
	if err != nil {
		t.Fatal(err)
	}
	ledgerRows := func() uint64 {
		var n uint64
		// Raw rows, not FINAL: a second run must not even add duplicates.
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for run := 1; run <= 2; run++ {
		if err := Migrate(ctx, conn, db, testLogger(t)); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if n := ledgerRows(); n != uint64(len(migrations)) {
			t.Fatalf("run %d: schema_migrations has %d rows, want %d", run, n, len(migrations))
		}
	}
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		got = append(got, name+":"+engine)
	}
	want := "check_executions:ReplacingMergeTree check_results:ReplacingMergeTree cloud_resources:ReplacingMergeTree clusters:ReplacingMergeTree databases:ReplacingMergeTree events:ReplacingMergeTree hosts:ReplacingMergeTree links:ReplacingMergeTree " +
		"sap_systems:ReplacingMergeTree schema_migrations:ReplacingMergeTree tags:ReplacingMergeTree"
	if strings.Join(got, " ") != want {
		t.Fatalf("tables = %v, want %s", got, want)
	}
}

func TestMigrateRefusesAChangedMigration(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), "0001_events.sql", "edited"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	err = Migrate(ctx, conn, db, nil)
	if err == nil || !strings.Contains(err.Error(), "0001_events.sql was changed after it was applied") {
		t.Fatalf("Migrate over an edited migration: %v", err)
	}
}

func TestMigrateRejectsBadDatabaseName(t *testing.T) {
	conn, _ := database(t, false)
	if err := Migrate(context.Background(), conn, "x; DROP DATABASE system", nil); err == nil {
		t.Fatal("Migrate accepted a database name with SQL in it")
	}
}
