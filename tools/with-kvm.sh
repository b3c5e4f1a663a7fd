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
# Environment: VMFORK_QEMU=1 uses QEMU even where /dev/kvm works (and it does
# where /dev/kvm is of the PVM kind, unless VMFORK_PVM=1);
# VMFORK_QEMU_MEM and VMFORK_QEMU_CPUS (default 1) size the QEMU VM;
# VMFORK_QEMU_APPEND adds to its kernel's command line;
# VMFORK_QEMU_TIMEOUT (seconds) ends a QEMU VM that runs longer, with what its
# kernel said (a kernel that hangs there times out no test inside it); one
# whose emulated CPU froze is ended after a minute, and with-kvm then exits
# with 75 (EX_TEMPFAIL): the emulator failed, not the command;
# VMFORK_QEMU_TCG_THREAD (multi, single) is TCG's threading; VMFORK_QEMU_KERNEL
# picks its kernel (default: bookworm-backports' kernel, unpacked into the
# cache; elsewhere the newest /boot/vmlinuz-*-amd64). VMFORK_CACHE: the cache
# (~/.cache/vm-fork).
# QEMU is a tool of the tests and the demo only: vm-fork never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quiet=0
EXIT_HUNG=75

say() { [ "$quiet" = 1 ] || echo "with-kvm: $*" >&2; }
die() { echo "with-kvm: $*" >&2; exit 125; }

# Opening /dev/kvm read-write is the only test that counts: a module that is
# loaded but refuses to bind (kvm_pvm inside a PVM guest) leaves no usable device.
# A KVM of the PVM kind that does open cannot boot Linux: it emulates guest
# CPL0 code with KVM's instruction emulator, which has no CMPXCHG16B or XRSTOR
# (Linux stops at its first allocation). The QEMU VM is used there too, unless
# VMFORK_PVM=1 asks for it anyway (the freestanding guests run on it).
pvm_refused() { [ -d /sys/module/kvm_pvm ] && [ "${VMFORK_PVM:-0}" != 1 ]; }
kvm_usable() {
	[ "${VMFORK_QEMU:-0}" != 1 ] && [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null && ! pvm_refused
}

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

# Where the QEMU VM's kernel's modules are (modinfo's base directory).
MODROOT=/
# The QEMU VM's initramfs: busybox, the modules for KVM, 9p and the console
# (with what they depend on, first; built-in ones are skipped: kernels differ in
# which they build in), and an init that runs the command. Rebuilt when this
# script, its init or the kernel changes.
# tun: the virtio-net tests' TAP devices; vhost_vsock: QEMU's vsock in bench-serve.
MODULES="kvm-amd virtio_pci virtio_console 9pnet_virtio 9p tun vhost_vsock"

# Print m's module files, each after those it depends on, once.
module_files() { # module_files KVER MODULE
	local kver=$1 m=$2 f dep
	case " $seen " in *" $m "*) return ;; esac
	seen="$seen $m"
	f=$(modinfo -b "$MODROOT" -k "$kver" -n "$m" 2>/dev/null) || die "module $m of $kver not found"
	for dep in $(modinfo -b "$MODROOT" -k "$kver" -F depends "$m" | tr ',' ' '); do
		module_files "$kver" "$dep"
	done
	case "$f" in "(builtin)" | "") ;; *) echo "$f" ;; esac
}

build_initramfs() { # build_initramfs KVER OUT
	local kver=$1 out=$2 dir f files name seen=""
	[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
	dir=$(mktemp -d)
	mkdir -p "$dir/bin" "$dir/lib/modules" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/host" "$dir/raw"
	cp /bin/busybox "$dir/bin/busybox"
	: >"$dir/modules"
	files=$(for m in $MODULES; do module_files "$kver" "$m"; done) || exit 125
	for f in $files; do
		name=$(basename "$f" | sed 's/\.ko.*//')
		case "$f" in
		*.ko.xz) xz -dc "$f" >"$dir/lib/modules/$name.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$dir/lib/modules/$name.ko" ;;
		*) cp "$f" "$dir/lib/modules/$name.ko" ;;
		esac
		echo "$name" >>"$dir/modules"
	done
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
# Empty when QEMU is missing (not a failure: pipefail would end the script silently).
qemu_major() {
	command -v qemu-system-x86_64 >/dev/null || return 0
	qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'
}

on_bookworm_as_root() { grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release && [ "$(id -u)" = 0 ]; }

# apt-get quietly, waiting for another apt's lock; its output goes to a log shown on failure.
apt_quiet() {
	local log
	log=$(mktemp "${TMPDIR:-/tmp}/vm-fork-apt.XXXXXX")
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq "$@" >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "apt-get $* failed (log: $log)"
	fi
	rm -f "$log"
}

add_backports() {
	local list=/etc/apt/sources.list.d/vm-fork-bookworm-backports.list
	[ -s "$list" ] && [ -n "$(apt-cache policy qemu-system-x86 | grep bookworm-backports)" ] && return 0
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$list"
	apt_quiet update
}

ensure_qemu() {
	local major
	major=$(qemu_major)
	[ -n "$major" ] && [ "$major" -ge "$QEMU_MIN_MAJOR" ] && return 0
	on_bookworm_as_root ||
		die "need qemu-system-x86_64 $QEMU_MIN_MAJOR or later, as root on Debian 12 it is installed (found: ${major:-none})"
	say "installing QEMU from bookworm-backports (Debian 12's QEMU ${major:-(none)} breaks AVX in nested guests)"
	add_backports
	# -t: QEMU's own dependencies (qemu-system-common, ...) must come from there too.
	apt_quiet install -y --no-install-recommends -t bookworm-backports \
		qemu-system-x86 qemu-system-data
}

# The QEMU VM's kernel: VMFORK_QEMU_KERNEL; else, on Debian 12, bookworm-backports'
# kernel, unpacked into the cache (nothing is installed: /boot stays the tests'),
# because Debian 12's own 6.1 KVM crashed there under our Linux fork test ("stack
# guard page was hit" in exc_page_fault, 2 runs in 5) and 6.12 did not in 11;
# else the newest /boot/vmlinuz-*-amd64. Sets kernel, kver and MODROOT.
pick_kernel() { # pick_kernel CACHE
	local dir=$1/kernel pkg tmp keep
	kernel=${VMFORK_QEMU_KERNEL:-}
	if [ -z "$kernel" ] && on_bookworm_as_root; then
		kernel=$(ls -1 "$dir"/boot/vmlinuz-* 2>/dev/null | tail -n 1 || true)
		# The unpacked kernel keeps only the modules it was unpacked for.
		[ "$(cat "$dir/modules-kept" 2>/dev/null)" = "$MODULES" ] || kernel=
		if [ -z "$kernel" ]; then
			say "unpacking bookworm-backports' kernel for the QEMU VM into $dir"
			add_backports
			pkg=$(apt-cache depends linux-image-amd64/bookworm-backports | awk '/Depends:/ { print $2; exit }')
			tmp=$(mktemp -d)
			(cd "$tmp" && apt_quiet download "$pkg") || die "cannot download $pkg"
			rm -rf "$dir" && mkdir -p "$dir"
			dpkg-deb -x "$tmp"/*.deb "$dir" || die "cannot unpack $pkg"
			rm -rf "$tmp"
			kernel=$(ls -1 "$dir"/boot/vmlinuz-* | tail -n 1)
			MODROOT=$dir kver=${kernel##*/vmlinuz-}
			depmod -b "$dir" "$kver"
			# Keep the modules the VM loads, and modinfo's indexes.
			keep=$(seen=""; for m in $MODULES; do module_files "$kver" "$m"; done) || exit 125
			find "$dir/lib/modules" -name '*.ko*' | { grep -vxF "$keep" || true; } | xargs -r rm -f
			rm -rf "$dir/usr"
			echo "$MODULES" >"$dir/modules-kept"
		fi
		MODROOT=$dir
	fi
	[ -n "$kernel" ] || kernel=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$kernel" ] && [ -r "$kernel" ] ||
		die "no kernel to run KVM in QEMU (apt-get install linux-image-amd64)"
	kver=${kernel##*/vmlinuz-}
}

# Where the working tree (or the current directory) is: it is bound back
# into the QEMU VM's tmpfs /tmp when it lives there.
share_dir() { git rev-parse --show-toplevel 2>/dev/null || pwd; }

# What the QEMU VM's kernel said when it died: the first oops or panic onwards
# (its cause is at the top of a long backtrace), else its last lines.
kernel_trouble() { # kernel_trouble LOG
	local first
	first=$(grep -n -m 1 -E 'BUG:|Oops|general protection|Kernel panic|WARNING:|watchdog:|stack guard' "$1" |
		cut -d: -f1 || true)
	if [ -z "$first" ]; then
		tail -n 40 "$1" 2>/dev/null || true
		return
	fi
	sed -n "$((first > 3 ? first - 3 : 1)),$((first + 60))p" "$1"
	[ "$(wc -l <"$1")" -gt $((first + 72)) ] && echo "[...]"
	[ "$(wc -l <"$1")" -gt $((first + 60)) ] && tail -n 12 "$1"
	return 0
}

# Commands on stdin to the QEMU VM's monitor; its answers on stdout.
qemu_monitor() { # qemu_monitor JOB
	timeout 10 socat -t 3 - "UNIX-CONNECT:$1/monitor.sock" 2>&1
}

# What the QEMU VM's CPU and local APIC hold now.
qemu_cpu_state() { # qemu_cpu_state JOB
	printf 'info registers\ninfo lapic\n' | qemu_monitor "$1" |
		tr -d '\r' | grep -v -e '^QEMU [0-9.]* monitor' -e '^(qemu)' || true
}

# The stall seen in CI: the CPU halted (L1's idle loop, interrupts enabled)
# with a vector pending in its local APIC's IRR, never taken. QEMU lost the
# CPU's "interrupt pending" bit: helper_vmrun() sets its VIRQ bit in the same
# word from the CPU's thread, without the lock that the APIC's timer holds to
# set the others (docs/kvm-in-qemu.md). A halted CPU wakes for a deliverable
# vector within microseconds, so one that stays halted over two polls 5 s
# apart with the same vectors pending has lost it. (A busy CPU is no sign:
# under nested timers the timer's vector is pending at many a poll.)
stalled_key() { # stalled_key STATE: "IRR at RIP" when halted with a vector pending, else empty
	local rip irr
	printf '%s\n' "$1" | grep -q 'HLT=1' || return 0
	rip=$(printf '%s\n' "$1" | sed -n 's/^RIP=\([0-9a-f]*\) .*/\1/p')
	irr=$(printf '%s\n' "$1" | sed -n 's/^IRR[[:space:]]*\(.*[0-9].*\)/\1/p')
	if [ -n "$irr" ]; then echo "${irr% } at RIP ${rip:-?}"; fi
}

# A key press on the QEMU VM's PS/2 keyboard: its interrupt makes QEMU's APIC
# raise the lost bit again, and the CPU takes what was pending.
qemu_kick() { # qemu_kick JOB
	printf 'sendkey shift\n' | qemu_monitor "$1" >/dev/null
}

# Watch the QEMU VM. A CPU halted with the same vectors pending at two polls
# in a row gets a key press (said on stderr); still so after three, it is
# frozen (marked in JOB/hung). After SECS (VMFORK_QEMU_TIMEOUT) or a freeze,
# keep what its CPU and local APIC said, and end it.
# Runs in a subshell of its own, without set -e: a failed poll is no reason to stop watching.
qemu_watchdog() { # qemu_watchdog PID SECS JOB
	set +e
	local pid=$1 secs=$2 job=$3 t=0 key last='' kicks=0 state why=''
	while [ "$t" -lt "$secs" ] && kill -0 "$pid" 2>/dev/null; do
		sleep 5
		t=$((t + 5))
		state=$(qemu_cpu_state "$job")
		key=$(stalled_key "$state")
		if [ -z "$key" ] || [ "$key" != "$last" ]; then
			last=$key kicks=0
			continue
		fi
		if [ "$kicks" -ge 3 ]; then
			why="its CPU froze (halted with an interrupt pending, never taken, even after $kicks key presses)"
			echo "$why" >"$job/hung"
			break
		fi
		kicks=$((kicks + 1))
		echo "with-kvm: the emulated CPU halted with an interrupt pending (vector $key); waking it with a key press (QEMU's lost interrupt bit, docs/kvm-in-qemu.md)" >&2
		qemu_kick "$job"
	done
	kill -0 "$pid" 2>/dev/null || return 0
	[ -n "$why" ] || { why="it ran past VMFORK_QEMU_TIMEOUT=$secs s"; state=$(qemu_cpu_state "$job"); }
	{
		echo "with-kvm: the QEMU VM is stopped: $why; its CPU then:"
		printf '%s\n' "$state" | sed 's/^/  /'
	} >"$job/overtime"
	kill "$pid"
}

run_in_qemu() {
	local kernel kver cache initrd job mem cpus rc qemu qemu_pid
	qemu=${VMFORK_QEMU_BIN:-qemu-system-x86_64}
	[ -n "${VMFORK_QEMU_BIN:-}" ] || ensure_qemu
	cache=${VMFORK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vm-fork}
	pick_kernel "$cache"
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
	# One emulated CPU: with two, multi-threaded TCG wrote L1's state into
	# nested guests' (docs/kvm-in-qemu.md), and one TCG thread for two CPUs
	# left Linux guests without timer progress.
	cpus=${VMFORK_QEMU_CPUS:-1}
	if pvm_refused; then
		say "/dev/kvm here is of the PVM kind, which cannot boot Linux (VMFORK_PVM=1 uses it anyway)"
	fi
	say "no usable /dev/kvm here: running in a QEMU VM ($cpus CPUs, $mem, $kver): $QEMU_KIND"
	rc=0
	"$qemu" -nodefaults -no-user-config -no-reboot \
		-accel "tcg,thread=${VMFORK_QEMU_TCG_THREAD:-multi}" -cpu max -smp "$cpus" -m "$mem" \
		-bios /usr/share/qemu/qboot.rom -display none -vga none -net none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 ${VMFORK_QEMU_APPEND:-} vmfork.job=$job" \
		-serial "file:$job/kernel.log" \
		-device virtio-serial-pci -chardev stdio,id=out -device virtconsole,chardev=out \
		-virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap \
		-monitor "unix:$job/monitor.sock,server=on,wait=off" </dev/null &
	qemu_pid=$!
	qemu_watchdog "$qemu_pid" "${VMFORK_QEMU_TIMEOUT:-86400}" "$job" &
	wait "$qemu_pid" || rc=$?
	kill %% 2>/dev/null || true
	if [ ! -s "$job/status" ]; then
		[ -s "$job/overtime" ] && cat "$job/overtime" >&2
		echo "with-kvm: the QEMU VM ended (qemu status $rc) without the command's status; its kernel said:" >&2
		kernel_trouble "$job/kernel.log" >&2
		[ -s "$job/hung" ] && exit "$EXIT_HUNG"
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
