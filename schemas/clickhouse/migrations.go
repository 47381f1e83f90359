// Package chschema holds the ClickHouse read model's DDL as versioned
// migrations, NNNN_name.sql, applied in version order by
// connectors/clickhouse.Migrate.
//
// Rules for a migration file (every one must run on ClickHouse 18.16 and on
// current ClickHouse):
//   - tables are written {database}.name; the database is chosen at run time;
//   - each statement ends with ';' at the end of a line; whole-line '--'
//     comments are dropped;
//   - every statement can run twice (CREATE ... IF NOT EXISTS, ADD COLUMN IF
//     NOT EXISTS): a crash between applying and recording re-applies it;
//   - no Map, JSON, DateTime64, Bool or LowCardinality types; DateTime,
//     UInt*, Int*, String (JSON text) and Array(String) instead;
//   - a file is never edited once released: Migrate refuses to run when an
//     applied migration's checksum changed. Add a new file instead.
package chschema

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Migration is one migration file with the database filled in.
type Migration struct {
	Version    uint32
	Name       string // file name, e.g. "0001_events.sql"
	Checksum   string // hex SHA-256 of the file as shipped
	Statements []string
}

var (
	fileName     = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)
	databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

// ValidateDatabase reports whether name can be used as a database name in
// DDL and queries without quoting: letters, digits and '_', not starting
// with a digit.
func ValidateDatabase(name string) error {
	if !databaseName.MatchString(name) {
		return fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and '_', starting with a letter or '_'", name)
	}
	return nil
}

// Migrations returns every migration in version order, with {database}
// replaced by database.
func Migrations(database string) ([]Migration, error) {
	if err := ValidateDatabase(database); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name it NNNN_name.sql (lower case)", e.Name())
		}
		version, _ := strconv.ParseUint(m[1], 10, 32) // four digits: cannot fail
		data, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		stmts := statements(strings.ReplaceAll(string(data), "{database}", database))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s has no statement", e.Name())
		}
		sum := sha256.Sum256(data)
		out = append(out, Migration{Version: uint32(version), Name: e.Name(), Checksum: hex.EncodeToString(sum[:]), Statements: stmts})
	}
	slices.SortFunc(out, func(a, b Migration) int { return int(a.Version) - int(b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d: renumber one", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// statements splits a file into statements: each ends with ';' at the end
// of a line (the last one may omit it). Whole-line comments are dropped, so
// no comment can end a statement.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(sql) {
		line = strings.TrimRight(line, " \t\r\n")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		body, end := strings.CutSuffix(line, ";")
		cur.WriteString(body)
		cur.WriteByte('\n')
		if end {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}
