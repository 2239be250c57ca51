package harness

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres templates. initdb takes a second or more (several on a busy
// machine), so the process backend runs it once per set of inputs (the
// postgres binaries, the user, the database and the settings below) and
// keeps the result, a data directory shut down cleanly, as a template:
//
//	${SHAKEDOWN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shakedown}/postgres-templates/<user>-<database>-<hash>
//
// Each Env copies the template into its own directory (copy_file_range,
// which clones on filesystems that can), so no two Envs share a file. A
// hard link would be cheaper but not safe: Postgres writes its files in
// place, and one Env's writes would change the template under the next.
//
// The template has no password. Its pg_hba.conf trusts the Unix socket,
// which each Env's server puts in the dependency's own directory (mode
// 0700, owned by the server's user), and asks TCP clients for a password.
// Once the server runs, the Env sets the user's random password over
// that socket, as a SCRAM verifier computed here, so the password itself
// never reaches the server, its log or the template. Until then no TCP
// client can log in at all.
//
// The templates directory is the one thing shakedown means to leave
// behind. It is private (mode 0700, checked as the run records'
// directory is, see runrecord.go). A template appears whole or not at
// all: it is built in a directory of its own and renamed into place, and
// a lock file keeps two test binaries from building the same one at
// once. Remove the directory to start afresh; the next run builds what
// it needs.

// EnvCacheDir, when set, is the directory shakedown keeps its caches in,
// instead of $XDG_CACHE_HOME/shakedown (or ~/.cache/shakedown). Postgres
// templates of the process backend live in its postgres-templates
// directory; harness/images/build.sh keeps its Debian root filesystem
// there.
const EnvCacheDir = "SHAKEDOWN_CACHE_DIR"

// templatesUse is the use of the templates directory, for its errors.
var templatesUse = privateUse{
	what: "postgres templates",
	why:  "the process backend copies the Postgres data directories there into every Env",
	env:  EnvCacheDir,
}

// templateSettings are appended to every template's postgresql.conf.
// The port and the Unix socket's directory are given on the command
// line, per Env. fsync and full_page_writes only matter when the machine
// itself crashes; a crashed server still recovers from its WAL. Dynamic
// shared memory lives in files in the data directory (pg_dynshmem),
// which goes with the Env, rather than in /dev/shm, where what a crashed
// server had stays.
const templateSettings = `
# shakedown
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
fsync = off
full_page_writes = off
dynamic_shared_memory_type = mmap
`

// templateHBA is every template's pg_hba.conf.
const templateHBA = `# shakedown: the Unix socket lives in a directory only the server's user
# can enter; the harness sets each Env's password through it.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
`

// pgTemplate names the inputs of one template.
type pgTemplate struct {
	initdb, postgres string // the binaries
	user, database   string
}

func (t pgTemplate) initdbArgs(data string) []string {
	return []string{t.initdb, "-D", data, "-U", t.user, "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"}
}

// name is the template's directory name: readable, and different
// whenever an input differs (a binary replaced by an upgrade included).
func (t pgTemplate) name() (string, error) {
	h := sha256.New()
	for _, s := range []string{"shakedown postgres template 1", t.user, t.database, templateSettings, templateHBA} {
		h.Write([]byte(s + "\x00"))
	}
	h.Write([]byte(strings.Join(t.initdbArgs(""), "\x00")))
	for _, bin := range []string{t.initdb, t.postgres} {
		fi, err := os.Stat(bin)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", bin, fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%s-%s-%x", t.user, t.database, h.Sum(nil)[:8]), nil
}

// templatesDir is where templates live (see [EnvCacheDir]).
func templatesDir() (string, error) {
	base := os.Getenv(EnvCacheDir)
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil { // no HOME: where harness/images/build.sh goes too
			c = filepath.Join("/var/tmp", ".cache")
		}
		base = filepath.Join(c, "shakedown")
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "postgres-templates"), nil
}

// postgresTemplate returns the templates directory, open, and the name
// of t's template in it, building the template first if it is missing.
// The caller closes the directory.
func (pr *processRuntime) postgresTemplate(ctx context.Context, t pgTemplate) (*os.Root, string, error) {
	dir, err := templatesDir()
	if err != nil {
		return nil, "", err
	}
	name, err := t.name()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, "", fmt.Errorf("postgres templates: %w", err)
	}
	cache, err := openPrivate(dir, true, templatesUse)
	if err != nil {
		return nil, "", err
	}
	if err := pr.ensureTemplate(ctx, cache, dir, name, t); err != nil {
		_ = cache.Close()
		return nil, "", err
	}
	return cache, name, nil
}

func (pr *processRuntime) ensureTemplate(ctx context.Context, cache *os.Root, dir, name string, t pgTemplate) error {
	if templateExists(cache, name) {
		return nil
	}
	unlock, err := lockIn(ctx, cache, name+".lock")
	if err != nil {
		return fmt.Errorf("postgres templates: lock %s: %w", filepath.Join(dir, name+".lock"), err)
	}
	defer unlock()
	if templateExists(cache, name) { // built by another binary meanwhile
		return nil
	}
	// What a killed build left; no build of this template runs now.
	if leftovers, err := fs.Glob(cache.FS(), name+".build-*"); err == nil {
		for _, l := range leftovers {
			_ = cache.RemoveAll(l)
		}
	}
	t0 := time.Now()
	build := name + ".build-" + randomHex(4)
	if err := pr.buildTemplate(ctx, t, cache, build); err != nil {
		return errors.Join(err, cache.RemoveAll(build))
	}
	if err := cache.Rename(build, name); err != nil {
		return errors.Join(fmt.Errorf("postgres templates: %w", err), cache.RemoveAll(build))
	}
	pr.env.log.Info("postgres template built", "dir", filepath.Join(dir, name), "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// templateExists reports whether name is a finished template: a
// directory (renamed into place only when complete) with a PG_VERSION.
func templateExists(cache *os.Root, name string) bool {
	fi, err := cache.Lstat(name)
	if err != nil || !fi.IsDir() {
		return false
	}
	fi, err = cache.Lstat(name + "/PG_VERSION")
	return err == nil && fi.Mode().IsRegular()
}

// lockIn takes an exclusive lock on the file name in dir, waiting for
// another holder (another test binary, or another Env of this one) as
// long as ctx allows.
func lockIn(ctx context.Context, dir *os.Root, name string) (unlock func(), err error) {
	f, err := dir.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	err = poll(ctx, func(context.Context) error {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			return permanent(err)
		}
		return err
	})
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	// Closing the file releases the lock.
	return func() { _ = f.Close() }, nil
}

// buildTemplate runs initdb (as the server's user, in the Env's
// directory), writes the settings, creates the database on a server that
// listens on a Unix socket only and is then shut down cleanly, and
// copies the result into the templates directory as build.
func (pr *processRuntime) buildTemplate(ctx context.Context, t pgTemplate, cache *os.Root, build string) error {
	work, err := os.MkdirTemp(pr.root, "postgres-template-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := pr.chown(work); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	if err := pr.run(ctx, filepath.Join(work, "initdb.log"), t.initdbArgs(data)...); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(data, "postgresql.conf"), templateSettings); err != nil {
		return err
	}
	// Truncated and rewritten: the file keeps its owner.
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(templateHBA), 0o600); err != nil {
		return err
	}
	if t.database != "postgres" {
		if err := pr.createDatabase(ctx, t, work, data); err != nil {
			return fmt.Errorf("postgres template: create database %s: %w", t.database, err)
		}
	}
	src, err := os.OpenRoot(data)
	if err != nil {
		return err
	}
	defer src.Close()
	return copyTree(src, cache, build, nil)
}

// templatePort only names the Unix socket of the server that builds a
// template: that server listens on no TCP port.
const templatePort = 5432

// createDatabase starts a server on data that listens on a Unix socket
// in dir only, creates t's database and shuts the server down cleanly,
// so that the template needs no recovery.
func (pr *processRuntime) createDatabase(ctx context.Context, t pgTemplate, dir, data string) error {
	n := &processNode{
		pr: pr, name: "template", dir: dir,
		argv:    []string{t.postgres, "-D", data, "-p", strconv.Itoa(templatePort), "-k", dir, "-c", "listen_addresses="},
		logPath: filepath.Join(dir, "postgres.log"),
		stopSig: syscall.SIGINT,
		cred:    pr.cred,
	}
	if _, err := n.start(ctx); err != nil {
		return err
	}
	defer n.kill(context.Background()) // after a failure; a no-op once stopped
	err := poll(ctx, func(ctx context.Context) error {
		if err := n.exited(); err != nil {
			return err
		}
		conn, err := socketConn(ctx, dir, templatePort, t.user)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		// The name is a validated identifier, so quoting it is enough.
		if _, err := conn.Exec(ctx, `CREATE DATABASE "`+t.database+`"`); err != nil {
			return permanent(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cmd, _ := n.current()
	if err := n.stop(ctx, defaultGrace); err != nil {
		return err
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("postgres did not shut down cleanly (exit code %d)", code)
	}
	return nil
}

// socketConn connects as user to the database postgres through the Unix
// socket in dir, which the template's pg_hba.conf trusts.
func socketConn(ctx context.Context, dir string, port int, user string) (*pgx.Conn, error) {
	q := url.Values{"host": {dir}, "port": {strconv.Itoa(port)}, "sslmode": {"disable"}}
	u := url.URL{Scheme: "postgres", User: url.User(user), Path: "/postgres", RawQuery: q.Encode()}
	return pgx.Connect(ctx, u.String())
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// copyTree copies the directory tree of src into dst as the new
// directory name, keeping permissions, and gives every copy to cred's
// user when cred is not nil. It refuses anything but directories and
// regular files: a data directory has no symbolic links, and the copy
// follows none. File contents move with copy_file_range, which clones
// them on filesystems that share extents (btrfs, XFS).
func copyTree(src, dst *os.Root, name string, cred *syscall.Credential) error {
	return fs.WalkDir(src.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := path.Join(name, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		switch {
		case d.IsDir():
			if err := dst.Mkdir(to, perm); err != nil {
				return err
			}
			if err := dst.Chmod(to, perm); err != nil { // whatever the umask
				return err
			}
			if cred != nil {
				return dst.Lchown(to, int(cred.Uid), int(cred.Gid))
			}
			return nil
		case d.Type().IsRegular():
			return copyFile(src, dst, p, to, perm, cred)
		}
		return fmt.Errorf("copy %s: %s is neither a directory nor a regular file (%v)", name, p, d.Type())
	})
}

func copyFile(src, dst *os.Root, from, to string, perm fs.FileMode, cred *syscall.Credential) error {
	in, err := src.OpenFile(from, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := dst.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(perm)
	}
	if err == nil && cred != nil {
		err = out.Chown(int(cred.Uid), int(cred.Gid))
	}
	return errors.Join(err, out.Close())
}

// setPassword gives p's user its random password on the server whose
// Unix socket is in dir, for port. It sends a SCRAM verifier, never the
// password, with statement logging off, so the server's log cannot show
// it even if the statement fails.
func (p *Postgres) setPassword(ctx context.Context, dir string, port int) error {
	conn, err := socketConn(ctx, dir, port, p.user)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	verifier, err := scramVerifier(p.password, salt)
	if err != nil {
		return err
	}
	// The user is a validated identifier and the verifier base64 with
	// '$' and ':': quoting is enough.
	_, err = conn.Exec(ctx, `SET log_statement = none; SET log_min_error_statement = panic; `+
		`ALTER ROLE "`+p.user+`" PASSWORD '`+verifier+`'`)
	if err != nil {
		return permanent(fmt.Errorf("set the password: %w", err))
	}
	return nil
}

// scramIterations is Postgres' default for SCRAM-SHA-256 verifiers.
const scramIterations = 4096

// scramVerifier is what Postgres stores for password with SCRAM-SHA-256
// (RFC 5802, 7677), in pg_authid's format. The password is ASCII, which
// SASLprep leaves as it is.
func scramVerifier(password string, salt []byte) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(mac("Server Key"))), nil
}
