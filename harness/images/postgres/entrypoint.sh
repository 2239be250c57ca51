#!/bin/bash
# Entrypoint of shakedown.local/postgres:15, a Postgres image built from
# Debian packages that behaves like the official postgres image where tests
# look: the same environment variables, the same data directory, the same
# readiness lines in the log.
#
#   POSTGRES_PASSWORD  superuser password (required unless
#                      POSTGRES_HOST_AUTH_METHOD=trust); POSTGRES_PASSWORD_FILE
#                      reads it from a file instead
#   POSTGRES_USER      superuser name, default postgres
#   POSTGRES_DB        database created on first start, default POSTGRES_USER
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP clients, default scram-sha-256
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA             data directory, default /var/lib/postgresql/data
#
# On first start (empty PGDATA) it runs initdb, starts a temporary server on
# the Unix socket only, creates POSTGRES_DB, runs /docker-entrypoint-initdb.d
# (*.sh, *.sql, *.sql.gz), stops it, then execs the real server. So "database
# system is ready to accept connections" appears twice on a first start and
# once on a restart with data, as with the official image.
#
# The server runs as the postgres user, as a child of this script, which
# turns SIGTERM (docker stop) into SIGINT, Postgres' fast shutdown: clients
# are disconnected and a clean checkpoint written. (Postgres' own answer to
# SIGTERM, a smart shutdown, would wait for every pooled client to leave; the
# official image sets STOPSIGNAL SIGINT for that reason, which docker import
# cannot.) SIGINT, SIGQUIT and SIGHUP are passed on as they are.
set -Eeuo pipefail

# "docker run IMAGE -c fsync=off" means "postgres -c fsync=off".
if [ "${1:-}" = "" ] || [ "${1:0:1}" = "-" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi

export PGDATA=${PGDATA:-/var/lib/postgresql/data}

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /run/postgresql
	if [ "$(stat -c %U "$PGDATA")" != postgres ]; then
		chown -R postgres:postgres "$PGDATA"
	fi
	chmod 700 "$PGDATA"
	chown postgres:postgres /run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

fail() {
	echo "entrypoint: $*" >&2
	exit 1
}

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
	[ -z "${POSTGRES_PASSWORD:-}" ] || fail "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
	POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	user=${POSTGRES_USER:-postgres}
	db=${POSTGRES_DB:-$user}
	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		fail "POSTGRES_PASSWORD is empty: set it, or set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one"
	fi

	# Test data need not survive a crash of the host: skip the fsyncs of
	# initdb and of the temporary server (seconds on a busy disk).
	initdb_args=(--username="$user" --auth-local=trust --auth-host="$auth" --no-sync)
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		pwfile=$(mktemp)
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		initdb_args+=(--pwfile="$pwfile")
	fi
	# shellcheck disable=SC2206 # word splitting is the point
	initdb_args+=(${POSTGRES_INITDB_ARGS:-})
	initdb "${initdb_args[@]}"
	rm -f "${pwfile:-}"

	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\njit = off\n" >>"$PGDATA/postgresql.conf"

	# The temporary server listens on the Unix socket only, so nobody can
	# connect over TCP before the database and the init scripts are done.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432 -c fsync=off" -w start
	trap 'pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true; exit 143' TERM INT

	psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$user")
	"${psql[@]}" --dbname postgres -v db="$db" <<-'SQL'
		SELECT format('CREATE DATABASE %I', :'db')
		WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
	SQL

	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			echo "entrypoint: running $f"
			# shellcheck disable=SC1090 # the user's script
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			echo "entrypoint: running $f"
			"${psql[@]}" --dbname "$db" -f "$f"
			;;
		*.sql.gz)
			echo "entrypoint: running $f"
			gunzip -c "$f" | "${psql[@]}" --dbname "$db"
			;;
		*) echo "entrypoint: ignoring $f" ;;
		esac
	done

	pg_ctl -D "$PGDATA" -m fast -w stop
	trap - TERM INT
	printf '\nPostgreSQL init process complete; ready for start up.\n\n'
fi

trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
trap 'kill -HUP "$pid" 2>/dev/null || true' HUP
"$@" &
pid=$!
# wait returns early when a trapped signal arrives; a child that has exited
# stays visible to kill -0 until wait reaps it and returns its status.
while :; do
	status=0
	wait "$pid" || status=$?
	kill -0 "$pid" 2>/dev/null || exit "$status"
done
