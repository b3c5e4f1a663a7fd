#!/bin/sh
# Build a tiny busybox-static initramfs whose init prints a line we look for,
# then resets the machine (vm-fork stops on a reset), or runs INIT (a shell
# script for busybox sh) instead; each FILE (a static program) goes into /bin.
# Usage: make-initramfs.sh OUT.cpio.gz [INIT [FILE...]]
set -eu
out=$1
init=${2:-}
shift
[ $# -eq 0 ] || shift # "$@": the FILEs
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
	{ echo "make-initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev"
cp "$busybox" "$dir/bin/busybox"
cat > "$dir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "vm-fork-init: hello from userspace, $(/bin/busybox cat /proc/cmdline | /bin/busybox wc -c) bytes of cmdline"
/bin/busybox reboot -f
INIT
[ -z "$init" ] || cp "$init" "$dir/init"
for f in "$@"; do cp "$f" "$dir/bin/"; done
chmod +x "$dir/init"
mkdir -p "$(dirname "$out")"
(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -9) > "$out.tmp"
mv "$out.tmp" "$out"
