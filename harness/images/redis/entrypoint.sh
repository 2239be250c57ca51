#!/bin/bash
# Entrypoint of shakedown.local/redis:7, a Redis image built from Debian
# packages that behaves like the official redis image where tests look:
#
#   docker run IMAGE                          redis-server
#   docker run IMAGE --loglevel verbose       redis-server --loglevel verbose
#   docker run IMAGE /etc/my.conf --port 7000 redis-server /etc/my.conf --port 7000
#   docker run IMAGE redis-cli ...            any other command runs as is
#
# The server always loads /etc/redis/shakedown.conf first (bind 0.0.0.0, no
# protected mode, log to stdout, data in /data); a config file given as the
# first argument and the options after it override it. It runs as the redis
# user, as PID 1, and SIGTERM makes it shut down cleanly. redis-server itself
# prints "Ready to accept connections".
set -Eeuo pipefail

# A first argument that is an option or a config file means redis-server.
if [ "${1:-}" = "" ] || [ "${1:0:1}" = "-" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" != redis-server ]; then
	exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
	find /data \! -user redis -exec chown redis:redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi

shift
args=(/etc/redis/shakedown.conf)
# redis-server takes a config file only as its first argument; include the
# user's after our defaults so that its settings win.
if [ $# -gt 0 ] && [ "${1%.conf}" != "$1" ]; then
	case "$1" in
	/*) conf=$1 ;;
	*) conf=$PWD/$1 ;;
	esac
	[ -r "$conf" ] || {
		echo "entrypoint: cannot read config file $conf" >&2
		exit 1
	}
	args+=(--include "$conf")
	shift
fi

umask 0077
exec redis-server "${args[@]}" "$@"
