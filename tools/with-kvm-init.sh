#!/bin/busybox sh
# init of tools/with-kvm.sh's QEMU VM: load KVM and 9p, mount the host's root
# with a tmpfs /tmp, run the job's command there with its output on the
# virtio console, write its status back to the host, and end the VM.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev
for m in $($bb cat /modules); do
	$bb insmod /lib/modules/$m.ko || echo "with-kvm-init: insmod $m failed" >/dev/ttyS0
done
job=$($bb sed -n 's/.*vmfork\.job=\([^ ]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -c /dev/hvc0 ] && [ $i -lt 100 ]; do $bb usleep 20000; i=$((i + 1)); done
exec </dev/null >/dev/hvc0 2>&1
$bb stty -onlcr </dev/hvc0 2>/dev/null

fail() { echo "with-kvm-init: $*"; echo 125 >/raw$job/status; $bb sync; $bb reboot -f; }
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 host /host || fail "cannot mount the host's files"
$bb mount --bind /host /raw
for d in dev proc sys; do $bb mount --bind /$d /host/$d; done
# Loopback, as any host has it: serve's TCP listener (127.0.0.1).
$bb ip link set lo up
# cgroup v2, as a systemd host has it: serve's per-clone limits (server/clone_cgroup.h).
$bb mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
$bb mkdir -p /dev/pts /dev/shm
$bb ln -sf /proc/self/fd /dev/fd
$bb mount -t devpts devpts /host/dev/pts 2>/dev/null
$bb mount -t tmpfs -o mode=1777 shm /host/dev/shm
$bb mount -t tmpfs -o mode=1777 tmp /host/tmp
$bb mount -t tmpfs -o mode=755 run /host/run
[ -c /dev/kvm ] || fail "no /dev/kvm in the QEMU VM (kvm-amd did not load): $($bb dmesg | $bb grep -i -m3 -e kvm -e svm)"
# The working tree and the job folder, wherever they live, as on the host.
for d in "$($bb cat /raw$job/share)" "$job"; do
	case "$d" in /tmp/* | /run/* | /dev/shm/*)
		$bb mkdir -p "/host$d" && $bb mount --bind "/raw$d" "/host$d" ;;
	esac
done
$bb chroot /host /bin/bash "$job/cmd.sh"
echo $? >/raw$job/status
$bb sync
$bb reboot -f
