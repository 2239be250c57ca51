#!/usr/bin/env bash
# rootfs.sh OUT.tar MIRROR
#
# Builds the Debian root file system that shakedown's local postgres and
# redis images share, and writes it as an uncompressed tarball to OUT.tar
# (atomically: a half-written file never has that name). Needs root.
#
# build.sh calls this and caches the tarball under a key that is a hash of
# this file, so any change here rebuilds the rootfs and nothing else does.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 OUT.tar MIRROR" >&2
	exit 2
fi
out=$1
mirror=$2
suite=bookworm
packages=postgresql-15,redis-server

if [ "$(id -u)" != 0 ]; then
	echo "rootfs.sh: debootstrap needs root (run build.sh as root or with sudo)" >&2
	exit 1
fi

work=$(mktemp -d "$(dirname "$out")/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
dir=$work/rootfs

echo "==> debootstrap $suite ($packages) from $mirror"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 40 "$work/debootstrap.log" >&2
	[ -f "$dir/debootstrap/debootstrap.log" ] && tail -n 40 "$dir/debootstrap/debootstrap.log" >&2
	echo "rootfs.sh: debootstrap failed (full log above)" >&2
	exit 1
fi

echo "==> trimming the rootfs"
# The packages' postinst created a cluster of their own; the entrypoint makes
# the one it needs in PGDATA on first start.
rm -rf "$dir/var/lib/postgresql/15" "$dir/etc/postgresql/15"
# Downloaded packages, package lists, documentation and translations are
# not needed at run time.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
	"$dir"/var/lib/apt/lists/* "$dir"/var/log/* \
	"$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
	"$dir"/usr/share/locale/* "$dir"/usr/share/i18n
# Postgres' JIT (llvmjit.so, its bitcode, LLVM and z3) is a third of the
# size and never pays off in tests; without the provider library Postgres
# disables JIT quietly, and the entrypoint sets jit = off as well.
rm -rf "$dir"/usr/lib/postgresql/15/lib/llvmjit* "$dir"/usr/lib/postgresql/15/lib/bitcode \
	"$dir"/usr/lib/*-linux-gnu/libLLVM-14.so* "$dir"/usr/lib/*-linux-gnu/libz3.so*
# Where the official images keep their data; owned by the server users so a
# container started with --user works too.
mkdir -p "$dir/var/lib/postgresql/data" "$dir/data" "$dir/run/postgresql"
chroot "$dir" chown postgres:postgres /var/lib/postgresql/data /run/postgresql
chroot "$dir" chown redis:redis /data
chmod 700 "$dir/var/lib/postgresql/data"
chmod 3777 "$dir/run/postgresql"

echo "==> writing $out"
tar --numeric-owner -C "$dir" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
