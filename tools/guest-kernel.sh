#!/bin/sh
# Build vm-fork's small guest kernel from Debian's linux-source-6.1 and
# configs/guest-kernel.config, or find it already built; print its path.
# Usage: tools/guest-kernel.sh [COPY_TO]
# The kernel is cached outside the clone, in $VMFORK_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/vm-fork), under a name made of the source
# package's version and the config's hash: a new source or config builds anew.
# A build takes about 5 minutes on 2 cores; only the bzImage and its .config
# are kept. With COPY_TO, the kernel is also copied there.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
fragment="$here/configs/guest-kernel.config"
tarball=/usr/src/linux-source-6.1.tar.xz
cache=${VMFORK_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vm-fork}

"$here/tools/install-deps.sh" "$here/configs/guest-kernel-packages.txt" >&2
version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
hash=$(sha256sum "$fragment" | cut -c1-12)
dir="$cache/guest-kernel-$version-$hash"
kernel="$dir/bzImage"

build() {
	work=$(mktemp -d "$cache/build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	echo "guest-kernel: building $kernel from linux-source $version (about 5 minutes on 2 cores; log: $work/build.log)" >&2
	tar -xJf "$tarball" -C "$work"
	src="$work/linux-source-6.1"
	make -s -C "$src" O="$work/out" allnoconfig KCONFIG_ALLCONFIG="$fragment" >"$work/build.log" 2>&1
	check_config "$work/out/.config"
	if ! make -s -C "$src" O="$work/out" -j"$(nproc)" bzImage >>"$work/build.log" 2>&1; then
		tail -40 "$work/build.log" >&2
		echo "guest-kernel: the kernel build failed" >&2
		exit 1
	fi
	mkdir -p "$dir.tmp"
	cp "$work/out/arch/x86/boot/bzImage" "$work/out/.config" "$dir.tmp/"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

# allnoconfig drops what it cannot satisfy without a word: a line of the
# fragment missing from the result is a config that no longer builds what we asked.
check_config() {
	bad=$(grep '^CONFIG_' "$fragment" | while read -r line; do
		grep -qx "$line" "$1" || echo "$line"
	done)
	[ -z "$bad" ] || { echo "guest-kernel: Kconfig did not keep:" $bad >&2; exit 1; }
}

mkdir -p "$cache"
# One build at a time: a second caller waits for the first's kernel.
exec 9>"$cache/guest-kernel.lock"
flock 9
[ -s "$kernel" ] || build
if [ $# -gt 0 ]; then
	mkdir -p "$(dirname "$1")"
	cp "$kernel" "$1.tmp" && mv "$1.tmp" "$1"
fi
echo "$kernel"
