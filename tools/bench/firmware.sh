#!/bin/bash
# make bench's firmware rows (issue 12), in one run: the time from exec to
# SeaBIOS's banner and to Linux's init, booting one disk image (FAT,
# SYSLINUX, Debian's kernel, our initramfs) with Debian's bios-microvm.bin,
# under `vm-fork run --firmware seabios` and beside it under QEMU's microvm
# machine with the same firmware and image, on the same KVM. Runs alternate.
# Usage: tools/bench/firmware.sh BUILD_DIR   (run where KVM is: tools/with-kvm.sh)
# FIRMWARE_BENCH_RUNS: runs of each (default 5). Work files go to
# BUILD_DIR/bench/firmware; the table to stdout.
set -euo pipefail
build=${1:?usage: firmware.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
runs=${FIRMWARE_BENCH_RUNS:-5}
work=$build/bench/firmware
bios=/usr/share/seabios/bios-microvm.bin
initrd=$build/linux/initramfs.cpio.gz
init_line="vm-fork-init: hello from userspace"
die() { echo "firmware bench: $*" >&2; exit 1; }

case $runs in '' | *[!0-9]* | 0) die "FIRMWARE_BENCH_RUNS must be a whole number, 1 or more" ;; esac
kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1) || true
[ -n "$kernel" ] || die "no /boot/vmlinuz-* (apt-get install linux-image-amd64)"
for f in "$build/vm-fork" "$initrd" "$bios"; do [ -f "$f" ] || die "$f missing"; done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
kind=${VMFORK_KVM_KIND:-$("$here/../with-kvm.sh" --kind)}

rm -rf "$work" && mkdir -p "$work"
img=$work/disk.img
mkfs.fat -C "$img" 32768 >/dev/null
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.gz %s\n' \
	"console=ttyS0 reboot=t panic=-1 i8042.noaux" >"$work/syslinux.cfg"
mcopy -i "$img" "$kernel" ::vmlinuz
mcopy -i "$img" "$initrd" ::initrd.gz
mcopy -i "$img" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --install "$img"

# Milliseconds (one decimal) since START, an $EPOCHREALTIME.
ms_since() {
	local now=${EPOCHREALTIME/./} start=${1/./}
	echo "$(((now - start) / 1000)).$(((now - start) % 1000 / 100))"
}

# The console on stdin: "BANNER_MS INIT_MS" ("-" for what never came) since START.
watch_console() {
	local start=$1 banner=- line
	while IFS= read -r line; do
		case $line in
		*"SeaBIOS (version"*) [ "$banner" != - ] || banner=$(ms_since "$start") ;;
		*"$init_line"*) echo "$banner $(ms_since "$start")"; return ;;
		esac
	done
	echo "$banner -"
}

# run_one NAME CMD...: CMD's console on its stdout; the two times, then CMD is stopped.
run_one() {
	local name=$1 fifo=$work/console.fifo start pid res
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	start=$EPOCHREALTIME
	timeout 300 "$@" >"$fifo" 2>>"$work/$name.err" </dev/null &
	pid=$!
	res=$(watch_console "$start" <"$fifo")
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "$res"
}

vmfork() {
	run_one vm-fork "$build/vm-fork" run --firmware seabios --mem 256M --disk "$img,ro" \
		--console file:/proc/self/fd/1
}

qemu() {
	run_one qemu qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256M -smp 1 \
		-bios "$bios" -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-drive "id=d,file=$img,format=raw,if=none,readonly=on" -device virtio-blk-device,drive=d
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }

: >"$work/vm-fork.times"
: >"$work/qemu.times"
for _ in $(seq "$runs"); do
	vmfork >>"$work/vm-fork.times"
	qemu >>"$work/qemu.times"
done
vb=$(awk '$1 != "-" { print $1 }' "$work/vm-fork.times" | median)
vi=$(awk '$2 != "-" { print $2 }' "$work/vm-fork.times" | median)
qb=$(awk '$1 != "-" { print $1 }' "$work/qemu.times" | median)
qi=$(awk '$2 != "-" { print $2 }' "$work/qemu.times" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "Firmware boot (issue 12): Debian's SeaBIOS (bios-microvm.bin), a FAT disk with SYSLINUX,"
echo "$(basename "$kernel") and build/linux/initramfs.cpio.gz; median of $runs runs each, ms from exec"
echo "KVM: $kind"
printf '%-34s %10s %10s\n' "" "banner" "init"
printf '%-34s %10s %10s\n' "vm-fork run --firmware seabios" "$vb" "$vi"
printf '%-34s %10s %10s\n' "qemu-system-x86_64 -M microvm" "$qb" "$qi"
printf '%-34s %10s %10s\n' "QEMU / vm-fork" "$(ratio "$qb" "$vb")" "$(ratio "$qi" "$vi")"
echo "(each run's times: $work/vm-fork.times, $work/qemu.times)"
