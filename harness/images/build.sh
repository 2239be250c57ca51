#!/usr/bin/env bash
# build.sh [debian|postgres|redis] [testserver]
#
# Builds shakedown's local container images without any registry:
#
#   shakedown.local/postgres:15        Debian's postgresql-15, official-image env
#   shakedown.local/redis:7            Debian's redis-server, official-image args
#   shakedown.local/testserver:latest  FROM scratch + harness/internal/testserver
#
# With no argument it builds all three ("debian", "postgres" and "redis" all
# mean the two Debian images). How:
#
#  1. rootfs.sh debootstraps a minimal Debian bookworm with postgresql-15 and
#     redis-server from the mirror in the machine's apt sources (or
#     $SHAKEDOWN_DEBIAN_MIRROR); the tarball is cached in
#     ${SHAKEDOWN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shakedown}.
#  2. The entrypoints (postgres/, redis/) are appended to a copy of it, and
#     the result is imported twice with docker import --change: the same
#     layer serves both images, only ENTRYPOINT, CMD, ENV and EXPOSE differ.
#     (docker import is used rather than docker build: the classic builder
#     makes a container per instruction, which is slow on fuse-overlayfs.)
#  3. testserver/ is built FROM scratch around a static Go binary.
#
# SHAKEDOWN_IMAGE_REPO replaces "shakedown.local" in the tags (to build a
# second set beside the first, e.g. to time a build from scratch).
#
# Every image carries the label org.shakedown.inputs=<hash of its inputs>
# (the scripts and entrypoints; for the testserver its Dockerfile, Go sources
# and Go version). An image whose label matches is left alone, so a second
# run with nothing changed only hashes a few files.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${SHAKEDOWN_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/shakedown}

repo=${SHAKEDOWN_IMAGE_REPO:-shakedown.local}
POSTGRES_TAG=$repo/postgres:15
REDIS_TAG=$repo/redis:7
TESTSERVER_TAG=$repo/testserver:latest
LABEL=org.shakedown.inputs

# The Docker engine here has no buildx; the classic builder works everywhere.
export DOCKER_BUILDKIT=0

log() { printf '==> [%3ds] %s\n' "$SECONDS" "$*"; }
die() {
	printf 'build.sh: %s\n' "$*" >&2
	exit 1
}

# files PATH... prints each file's path (relative to the repo) and content.
files() {
	local f
	for f in "$@"; do
		printf '%s\0' "$f"
		cat "$root/$f"
	done
}

# digest reads stdin and prints a short hash of it.
digest() { sha256sum | cut -c1-16; }

# inputs_of TAG prints the image's inputs label, or nothing if it is absent.
inputs_of() {
	docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

# mirror prints the Debian mirror that serves bookworm in the machine's apt
# sources (deb822 .sources first, then one-line .list files).
mirror() {
	if [ -n "${SHAKEDOWN_DEBIAN_MIRROR:-}" ]; then
		echo "$SHAKEDOWN_DEBIAN_MIRROR"
		return
	fi
	local f m
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		m=$(awk -v RS= '
			tolower($0) ~ /(^|\n)enabled: *no/ { next }
			{
				uri = ""; ok = 0
				n = split($0, lines, "\n")
				for (i = 1; i <= n; i++) {
					if (lines[i] ~ /^URIs:/) { split(lines[i], w, /[ \t]+/); uri = w[2] }
					if (lines[i] ~ /^Suites:/ && lines[i] ~ /[ \t]bookworm([ \t]|$)/) ok = 1
				}
				if (ok && uri != "") { print uri; exit }
			}' "$f")
		if [ -n "$m" ]; then
			echo "$m"
			return
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		m=$(sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
		if [ -n "$m" ]; then
			echo "$m"
			return
		fi
	done
	echo http://deb.debian.org/debian
}

# ensure_debootstrap installs debootstrap with apt-get when it is missing.
ensure_debootstrap() {
	command -v debootstrap >/dev/null && return
	[ "$(id -u)" = 0 ] || die "debootstrap is missing; install it (apt-get install debootstrap) or run as root"
	log "installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq debootstrap >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } ||
		die "apt-get install debootstrap failed"
}

# ensure_rootfs KEY prints the path of the cached rootfs tarball for KEY,
# running rootfs.sh first when it is not there.
ensure_rootfs() {
	local key=$1 tarball=$cache/rootfs-$1.tar
	if [ -f "$tarball" ]; then
		log "rootfs tarball cached: $tarball" >&2
	else
		ensure_debootstrap >&2
		local m
		m=$(mirror)
		"$here/rootfs.sh" "$tarball" "$m" >&2
		# Tarballs of older inputs are of no further use.
		find "$cache" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
	fi
	echo "$tarball"
}

# build_debian KEY imports the postgres and redis images from the rootfs
# tarball plus the entrypoints, both labelled with KEY.
build_debian() {
	local key=$1 tarball image
	tarball=$(ensure_rootfs "$(files harness/images/rootfs.sh | digest)")
	image=$(mktemp -d "$cache/image.XXXXXX")
	trap 'rm -rf "$image"' RETURN
	cp "$tarball" "$image/image.tar"
	mkdir -p "$image/overlay/usr/local/bin" "$image/overlay/etc/redis"
	install -m 755 "$here/postgres/entrypoint.sh" "$image/overlay/usr/local/bin/postgres-entrypoint.sh"
	install -m 755 "$here/redis/entrypoint.sh" "$image/overlay/usr/local/bin/redis-entrypoint.sh"
	install -m 644 "$here/redis/defaults.conf" "$image/overlay/etc/redis/shakedown.conf"
	tar -rf "$image/image.tar" --numeric-owner --owner=0 --group=0 -C "$image/overlay" \
		./usr/local/bin/postgres-entrypoint.sh ./usr/local/bin/redis-entrypoint.sh ./etc/redis/shakedown.conf

	log "importing $POSTGRES_TAG"
	docker import \
		--change "LABEL $LABEL=$key" \
		--change "LABEL org.shakedown.image=postgres" \
		--change "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV LANG=C.UTF-8" \
		--change "ENV PGDATA=/var/lib/postgresql/data" \
		--change "EXPOSE 5432" \
		--change 'ENTRYPOINT ["postgres-entrypoint.sh"]' \
		--change 'CMD ["postgres"]' \
		"$image/image.tar" "$POSTGRES_TAG" >/dev/null
	log "importing $REDIS_TAG"
	docker import \
		--change "LABEL $LABEL=$key" \
		--change "LABEL org.shakedown.image=redis" \
		--change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV LANG=C.UTF-8" \
		--change "WORKDIR /data" \
		--change "EXPOSE 6379" \
		--change 'ENTRYPOINT ["redis-entrypoint.sh"]' \
		--change 'CMD ["redis-server"]' \
		"$image/image.tar" "$REDIS_TAG" >/dev/null
}

# build TAG KEY CONTEXT runs docker build in CONTEXT, labelled with KEY.
build() {
	local tag=$1 key=$2 context=$3
	log "building $tag"
	# The classic builder warns that it is deprecated on every run; show its
	# stderr only when the build fails.
	if ! docker build -q --label "$LABEL=$key" -t "$tag" "$context" >/dev/null 2>"$cache/build.err"; then
		cat "$cache/build.err" >&2
		die "docker build of $tag failed"
	fi
	rm -f "$cache/build.err"
}

# prune removes our images that a rebuild left untagged.
prune() { docker image prune -f --filter "label=$LABEL" >/dev/null; }

want_debian=0
want_testserver=0
[ $# -eq 0 ] && set -- debian testserver
for arg in "$@"; do
	case "$arg" in
	debian | postgres | redis) want_debian=1 ;;
	testserver) want_testserver=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown image set \"$arg\" (want debian, postgres, redis or testserver)" ;;
	esac
done

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (docker info failed); start it first"
mkdir -p "$cache"
# Two builds at once (two shells, two make runs) take turns.
exec 9>"$cache/build.lock"
flock 9

SECONDS=0
built=()

if [ $want_debian = 1 ]; then
	debkey=$(files harness/images/rootfs.sh harness/images/build.sh \
		harness/images/postgres/entrypoint.sh \
		harness/images/redis/entrypoint.sh harness/images/redis/defaults.conf | digest)
	if [ "$(inputs_of "$POSTGRES_TAG")" = "$debkey" ] && [ "$(inputs_of "$REDIS_TAG")" = "$debkey" ]; then
		log "$POSTGRES_TAG and $REDIS_TAG are up to date"
	else
		build_debian "$debkey"
	fi
	built+=("$POSTGRES_TAG" "$REDIS_TAG")
fi

if [ $want_testserver = 1 ]; then
	command -v go >/dev/null || die "go is not installed (needed to compile the testserver)"
	srcs=()
	for f in "$root"/harness/internal/testserver/*.go; do
		case "$f" in *_test.go) ;; *) srcs+=("${f#"$root"/}") ;; esac
	done
	tskey=$({
		go env GOVERSION
		files harness/images/build.sh harness/images/testserver/Dockerfile "${srcs[@]}"
	} | digest)
	if [ "$(inputs_of "$TESTSERVER_TAG")" = "$tskey" ]; then
		log "$TESTSERVER_TAG is up to date"
	else
		ctx=$(mktemp -d)
		trap 'rm -rf "$ctx"' EXIT
		log "compiling harness/internal/testserver (static)"
		(cd "$root" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' \
			-o "$ctx/testserver" ./harness/internal/testserver)
		cp "$here/testserver/Dockerfile" "$ctx/"
		build "$TESTSERVER_TAG" "$tskey" "$ctx"
	fi
	built+=("$TESTSERVER_TAG")
fi

prune

log "done"
echo
for tag in "${built[@]}"; do
	printf '%-36s %s\n' "$tag" "$(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
done
echo
exports=()
[ $want_debian = 1 ] && exports+=("SHAKEDOWN_POSTGRES_IMAGE=$POSTGRES_TAG" "SHAKEDOWN_REDIS_IMAGE=$REDIS_TAG")
[ $want_testserver = 1 ] && exports+=("SHAKEDOWN_TESTSERVER_IMAGE=$TESTSERVER_TAG")
echo "export ${exports[*]}"
