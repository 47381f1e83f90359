package chschema

import (
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ms, err := Migrations("fleet_x")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0001_events.sql", "0002_hosts.sql"}
	if len(ms) < len(want) {
		t.Fatalf("got %d migrations, want at least %d", len(ms), len(want))
	}
	for i, m := range ms {
		if i < len(want) && m.Name != want[i] {
			t.Errorf("migration %d is %s, want %s", i, m.Name, want[i])
		}
		// Issues own version ranges (0020-0029: cloud resources and links),
		// so versions increase with gaps.
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("%s has version %d, after %s's %d (versions increase)", m.Name, m.Version, ms[i-1].Name, ms[i-1].Version)
		}
		if len(m.Checksum) != 64 {
			t.Errorf("%s checksum %q", m.Name, m.Checksum)
		}
		for _, s := range m.Statements {
			if strings.Contains(s, "{database}") || strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
				t.Errorf("%s: statement not prepared: %q", m.Name, s)
			}
			if !strings.Contains(s, "fleet_x.") {
				t.Errorf("%s: statement does not name the database: %q", m.Name, s)
			}
			for _, banned := range []string{"Map(", "JSON", "DateTime64", "Bool", "LowCardinality"} {
				if strings.Contains(s, banned) {
					t.Errorf("%s uses %s, which ClickHouse 18.16 lacks", m.Name, banned)
				}
			}
		}
	}
}

func TestStatements(t *testing.T) {
	got := statements("-- header; with a semicolon;\nCREATE TABLE a\n(\n  x UInt8 -- trailing\n);\n\n  -- between\nSELECT 1;\nSELECT 2\n")
	want := []string{"CREATE TABLE a\n(\n  x UInt8 -- trailing\n)", "SELECT 1", "SELECT 2"}
	if len(got) != len(want) {
		t.Fatalf("statements = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("statement %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestValidateDatabase(t *testing.T) {
	for _, ok := range []string{"fleetstream", "_x", "test_abc_12"} {
		if err := ValidateDatabase(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "a-b", "a.b", "a`b", "x; DROP TABLE y", strings.Repeat("a", 64)} {
		if err := ValidateDatabase(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
		if _, err := Migrations(bad); err == nil {
			t.Errorf("Migrations(%q) accepted", bad)
		}
	}
}
