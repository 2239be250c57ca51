package harness

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func needPostgresBinaries(t *testing.T) {
	t.Helper()
	if missing := missingBinaries([]string{"initdb", "postgres"}); len(missing) > 0 {
		t.Skipf("needs %v (Debian: apt-get install -y postgresql)", missing)
	}
}

// TestPostgresTemplatePasswords: Envs copied from one template each have
// their own password, which neither the template, nor the server's log,
// nor the other Env's server accepts or shows.
func TestPostgresTemplatePasswords(t *testing.T) {
	needPostgresBinaries(t)
	ctx := ctxFor(t, 5*time.Minute)
	a := New(t, WithBackend(Process)).Postgres("pg")
	b := New(t, WithBackend(Process)).Postgres("pg")
	require.NotEqual(t, a.Password(), b.Password())
	require.NoError(t, pgProbe(ctx, a, 5*time.Second))
	require.NoError(t, pgProbe(ctx, b, 5*time.Second))

	other := *b
	other.password = a.Password()
	require.Error(t, pgProbe(ctx, &other, 5*time.Second), "a's password does not open b")
	other.password = ""
	require.Error(t, pgProbe(ctx, &other, 5*time.Second), "no password does not open b")

	dir, err := templatesDir()
	require.NoError(t, err)
	for _, p := range []*Postgres{a, b} {
		secret := []byte(p.Password())
		n := p.rt.(*processNode)
		noSecretIn(t, n.dir, secret)                // its data directory and postgres.log
		noSecretIn(t, dir, secret)                  // the templates
		noSecretIn(t, a.env.procs.rec.path, secret) // the run record
	}
}

// noSecretIn fails if secret appears in any file under root.
func noSecretIn(t *testing.T, root string, secret []byte) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		require.False(t, bytes.Contains(b, secret), "the password is in %s", p)
		return nil
	})
	require.NoError(t, err)
}

// TestScramVerifier: what scramVerifier computes is what Postgres stores
// for the same password and salt.
func TestScramVerifier(t *testing.T) {
	needPostgresBinaries(t)
	ctx := ctxFor(t, 2*time.Minute)
	p := New(t, WithBackend(Process)).Postgres("pg")
	conn, err := pgx.Connect(ctx, p.DirectDSN())
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE ROLE probe PASSWORD 'correct horse'`)
	require.NoError(t, err)
	var stored string
	require.NoError(t, conn.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = 'probe'`).Scan(&stored))
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	_, rest, ok := strings.Cut(stored, ":")
	require.True(t, ok, stored)
	salt64, _, ok := strings.Cut(rest, "$")
	require.True(t, ok, stored)
	salt, err := base64.StdEncoding.DecodeString(salt64)
	require.NoError(t, err)
	got, err := scramVerifier("correct horse", salt)
	require.NoError(t, err)
	require.Equal(t, stored, got)
}

// TestPostgresTemplateBuiltOnce: Envs that need the same template at the
// same time (here goroutines; other test binaries take the same lock)
// build it once, and what a killed build left is removed.
func TestPostgresTemplateBuiltOnce(t *testing.T) {
	needPostgresBinaries(t)
	t.Setenv(EnvCacheDir, t.TempDir())
	ctx := ctxFor(t, 5*time.Minute)
	initdb, err := lookBinary("initdb")
	require.NoError(t, err)
	pgbin, err := lookBinary("postgres")
	require.NoError(t, err)
	tmpl := pgTemplate{initdb: initdb, postgres: pgbin, user: "shakedown", database: "once"}
	name, err := tmpl.name()
	require.NoError(t, err)
	dir, err := templatesDir()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, name+".build-dead"), 0o700), "a killed build's leftover")
	require.NoError(t, os.Chmod(dir, 0o700))

	const envs = 3
	h := &recordingHandler{}
	var wg sync.WaitGroup
	errs := make([]error, envs)
	for i := range envs {
		e := New(t, WithBackend(Process), WithLogger(slog.New(h)))
		pr, err := e.processes()
		require.NoError(t, err)
		wg.Go(func() {
			cache, got, err := pr.postgresTemplate(ctx, tmpl)
			if err == nil {
				_ = cache.Close()
				if got != name {
					err = &os.PathError{Op: "template", Path: got, Err: os.ErrInvalid}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	_, built, lines := h.count(slog.LevelDebug, "postgres template built")
	require.Equal(t, 1, built, "%v", lines)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{name, name + ".lock"}, names, "one template, its lock, no leftover build")
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// TestTemplatesDirRefused: a templates directory others could write to,
// or a symbolic link, is refused with the fix.
func TestTemplatesDirRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(dir string) error
		want string
	}{
		{"writable by others", func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chmod(dir, 0o777)
		}, "group or others can write"},
		{"symbolic link", func(dir string) error { return os.Symlink(t.TempDir(), dir) }, "symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvCacheDir, t.TempDir())
			dir, err := templatesDir()
			require.NoError(t, err)
			require.NoError(t, c.make(dir))
			pr := &processRuntime{}
			_, _, err = pr.postgresTemplate(ctxFor(t, time.Minute), pgTemplate{initdb: "/bin/true", postgres: "/bin/true", user: "u", database: "d"})
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, "rm -rf "+dir)
			require.ErrorContains(t, err, EnvCacheDir)
		})
	}
}

// TestCopyTreeRefusesLinks: a copy follows no symbolic link.
func TestCopyTreeRefusesLinks(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "PG_VERSION"), []byte("15\n"), 0o600))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(src, "link")))
	from, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer from.Close()
	to, err := os.OpenRoot(t.TempDir())
	require.NoError(t, err)
	defer to.Close()
	require.ErrorContains(t, copyTree(from, to, "data", nil), "neither a directory nor a regular file")
}

// TestCopyTreeCopiesEveryFile: every file of the tree arrives whole, with
// its own content and mode, and every directory with its mode.
func TestCopyTreeCopiesEveryFile(t *testing.T) {
	src := t.TempDir()
	want := map[string]string{}
	for d := range 5 {
		dir := filepath.Join(src, "base", strconv.Itoa(d))
		require.NoError(t, os.MkdirAll(dir, 0o700))
		require.NoError(t, os.Chmod(dir, os.FileMode(0o700|d%2*0o050)))
		for f := range 60 {
			name := filepath.Join(dir, strconv.Itoa(f))
			body := strings.Repeat(fmt.Sprintf("%d/%d;", d, f), (d*60+f)%97*13)
			require.NoError(t, os.WriteFile(name, []byte(body), 0o600))
			require.NoError(t, os.Chmod(name, os.FileMode(0o600|f%2*0o040)))
			rel, err := filepath.Rel(src, name)
			require.NoError(t, err)
			want[rel] = body
		}
	}
	from, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer from.Close()
	dst := t.TempDir()
	to, err := os.OpenRoot(dst)
	require.NoError(t, err)
	defer to.Close()
	require.NoError(t, copyTree(from, to, "data", nil))

	got := 0
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(src, p)
		require.NoError(t, err)
		fi, err := d.Info()
		require.NoError(t, err)
		cfi, err := os.Lstat(filepath.Join(dst, "data", rel))
		require.NoError(t, err, rel)
		require.Equal(t, fi.Mode(), cfi.Mode(), rel)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dst, "data", rel))
			require.NoError(t, err)
			require.Equal(t, want[rel], string(b), rel)
			got++
		}
		return nil
	}))
	require.Equal(t, len(want), got)
}
