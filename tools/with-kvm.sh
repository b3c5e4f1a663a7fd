#!/bin/bash
# Run a command where a KVM is: right here when /dev/kvm opens, otherwise
# inside a QEMU VM whose emulated AMD CPU has SVM and nested paging, so that
# Debian's kernel loads kvm-amd there. The host's root filesystem is shared
# with that VM over 9p (with a tmpfs /tmp, as Unix sockets cannot live on 9p),
# so the command sees the same files, programs and working directory.
#
#   tools/with-kvm.sh [--quiet] CMD [ARGS...]   run CMD, exit with its status
#   tools/with-kvm.sh --kind                    say which KVM CMD would get
#
# Environment: VMFORK_QEMU=1 uses QEMU even where /dev/kvm works;
# VMFORK_QEMU_MEM and VMFORK_QEMU_CPUS size the QEMU VM; VMFORK_QEMU_KERNEL
# picks its kernel (default: the newest Debian /boot/vmlinuz-*-amd64).
# QEMU is a tool of the tests and the demo only: vm-fork never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quiet=0

say() { [ "$quiet" = 1 ] || echo "with-kvm: $*" >&2; }
die() { echo "with-kvm: $*" >&2; exit 125; }

# Opening /dev/kvm read-write is the only test that counts: a module that is
# loaded but refuses to bind (kvm_pvm inside a PVM guest) leaves no usable device.
kvm_usable() { [ "${VMFORK_QEMU:-0}" != 1 ] && [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; }

native_kind() {
	if [ -n "${VMFORK_KVM_KIND:-}" ]; then
		echo "$VMFORK_KVM_KIND"
	elif [ -d /sys/module/kvm_pvm ]; then
		echo "nested KVM of the PVM kind (guest CPL0 code is emulated)"
	elif grep -qw hypervisor /proc/cpuinfo; then
		echo "nested KVM (this host is itself a VM: timings are not those of hardware)"
	else
		echo "hardware KVM ($(grep -m1 -ow -e vmx -e svm /proc/cpuinfo || echo '?'))"
	fi
}
QEMU_KIND="QEMU TCG with nested SVM (an emulated CPU: correctness is real, timings are not representative)"

kind() { if kvm_usable; then native_kind; else echo "$QEMU_KIND"; fi; }

debian_kernel() {
	local k=${VMFORK_QEMU_KERNEL:-}
	[ -n "$k" ] || k=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)
	[ -n "$k" ] && [ -r "$k" ] ||
		die "no Debian kernel in /boot to run KVM in QEMU (apt-get install linux-image-amd64)"
	echo "$k"
}

# The QEMU VM's initramfs: busybox, the modules for KVM, 9p and the console, and
# an init that runs the command. Rebuilt when this script or the kernel changes.
# Modules load in this order: each after the ones it depends on.
MODULES="irqbypass ccp kvm kvm-amd virtio_ring virtio virtio_pci_modern_dev
virtio_pci_legacy_dev virtio_pci virtio_console netfs fscache 9pnet 9pnet_virtio 9p"

build_initramfs() { # build_initramfs KVER OUT
	local kver=$1 out=$2 dir m f
	[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
	dir=$(mktemp -d)
	mkdir -p "$dir/bin" "$dir/lib/modules" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/host" "$dir/raw"
	cp /bin/busybox "$dir/bin/busybox"
	for m in $MODULES; do
		f=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || die "module $m of $kver not found"
		case "$f" in
		*.ko.xz) xz -dc "$f" >"$dir/lib/modules/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$dir/lib/modules/$m.ko" ;;
		*) cp "$f" "$dir/lib/modules/$m.ko" ;;
		esac
	done
	echo "$MODULES" | tr '\n' ' ' >"$dir/modules"
	cp "$here/with-kvm-init.sh" "$dir/init"
	chmod +x "$dir/init"
	mkdir -p "$(dirname "$out")"
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$dir"
}

# QEMU 7.2 (Debian 12's own) lets a nested guest's XSETBV through without an
# SVM intercept, so KVM never learns the guest's XCR0 and AVX raises #UD there
# (docs/kvm-in-qemu.md). QEMU 8 and later intercept it: on Debian 12 take
# bookworm-backports' QEMU (pinned at its default low priority: nothing else
# comes from there).
QEMU_MIN_MAJOR=8
qemu_major() { qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'; }

ensure_qemu() {
	local major log list=/etc/apt/sources.list.d/vm-fork-bookworm-backports.list
	major=$(qemu_major)
	[ -n "$major" ] && [ "$major" -ge "$QEMU_MIN_MAJOR" ] && return 0
	grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release ||
		die "need qemu-system-x86_64 $QEMU_MIN_MAJOR or later (found: ${major:-none})"
	[ "$(id -u)" = 0 ] || die "need root to install QEMU $QEMU_MIN_MAJOR+ from bookworm-backports"
	say "installing QEMU from bookworm-backports (Debian 12's QEMU ${major:-(none)} breaks AVX in nested guests)"
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$list"
	log=$(mktemp "${TMPDIR:-/tmp}/vm-fork-apt.XXXXXX")
	if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
			--no-install-recommends qemu-system-x86/bookworm-backports qemu-system-data/bookworm-backports; } >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "could not install QEMU from bookworm-backports (log: $log)"
	fi
	rm -f "$log"
}

# Where the working tree (or the current directory) is: it is bound back
# into the QEMU VM's tmpfs /tmp when it lives there.
share_dir() { git rev-parse --show-toplevel 2>/dev/null || pwd; }

run_in_qemu() {
	local kernel kver cache initrd job mem cpus rc qemu
	kernel=$(debian_kernel)
	kver=${kernel#/boot/vmlinuz-}
	qemu=${VMFORK_QEMU_BIN:-qemu-system-x86_64}
	[ -n "${VMFORK_QEMU_BIN:-}" ] || ensure_qemu
	cache=${VMFORK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vm-fork}
	initrd=$cache/kvm-vm-$kver.cpio.gz
	if [ ! -s "$initrd" ] || [ "$initrd" -ot "$0" ] || [ "$initrd" -ot "$here/with-kvm-init.sh" ]; then
		build_initramfs "$kver" "$initrd"
	fi
	# The job folder carries the command in and its status out (over 9p).
	job=$(mktemp -d "${TMPDIR:-/tmp}/vm-fork-kvm.XXXXXX")
	trap 'rm -rf "$job"' EXIT
	{
		export -p | grep -v -E '^declare -x (BASH_[A-Z_]*|SHLVL|PWD|OLDPWD|_)='
		echo "export VMFORK_KVM_KIND=$(printf %q "$QEMU_KIND")"
		printf 'cd %q || exit 125\n' "$PWD"
		printf 'exec'
		printf ' %q' "$@"
		echo
	} >"$job/cmd.sh"
	share_dir >"$job/share"
	mem=${VMFORK_QEMU_MEM:-$(awk '/MemTotal/ { m = int($2 / 1024 / 1024 * 3 / 4); print (m > 16 ? 16 : m) "G" }' /proc/meminfo)}
	cpus=${VMFORK_QEMU_CPUS:-$(nproc)}
	say "no usable /dev/kvm here: running in a QEMU VM ($cpus CPUs, $mem, $kver): $QEMU_KIND"
	rc=0
	"$qemu" -nodefaults -no-user-config -no-reboot \
		-accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem" \
		-bios /usr/share/qemu/qboot.rom -display none -vga none -net none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 vmfork.job=$job" \
		-serial "file:$job/kernel.log" \
		-device virtio-serial-pci -chardev stdio,id=out -device virtconsole,chardev=out \
		-virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap \
		</dev/null || rc=$?
	if [ ! -s "$job/status" ]; then
		echo "with-kvm: the QEMU VM ended (qemu status $rc) without the command's status; its kernel said:" >&2
		tail -n 40 "$job/kernel.log" >&2 || true
		exit 125
	fi
	exit "$(cat "$job/status")"
}

[ "${1:-}" = --quiet ] && { quiet=1; shift; }
case "${1:-}" in
--kind) kind; exit 0 ;;
-h | --help | "") sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
esac
if kvm_usable; then
	export VMFORK_KVM_KIND=${VMFORK_KVM_KIND:-$(native_kind)}
	exec "$@"
fi
run_in_qemu "$@"
