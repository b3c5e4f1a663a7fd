#!/bin/sh
# The README's main command: boot a template guest that builds a 64 MiB table,
# freeze it, fork it into clones that each work on their own slice of that
# shared table, and show what each did, how long the forks took and what
# the clones cost in memory. Then fork again from the warm shells.
set -eu
cd "$(dirname "$0")/.."
vmfork=${BUILD:-build}/vm-fork
guest=${BUILD:-build}/guest/demo.elf
clones=${CLONES:-8}

# What it needs, before anything starts.
need() { echo "demo: $*" >&2; exit 1; }
[ -x "$vmfork" ] || need "$vmfork is not built: run 'make' first"
[ -f "$guest" ] || need "the demo guest $guest is not built: run 'make' first"
command -v curl >/dev/null || need "curl is missing: 'make deps' (tools/install-deps.sh) installs it"

dir=$(mktemp -d /tmp/vm-fork-demo.XXXXXX)
api=$dir/api.sock
pid=
# Under set -e a failed kill or wait here would end the script before rm and with
# the VMM's status; the demo's own status is kept.
cleanup() {
	status=$?
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	exit "$status"
}
trap cleanup EXIT

# The VMM's own log says why it stopped or stalls (no /dev/kvm, a bad guest, ...).
show_vmm_log() {
	echo "demo: the VMM's log ($dir/template.log):" >&2
	sed 's/^/   vm-fork| /' "$dir/template.log" >&2
}

# Still running? The shell reaps a dead child while it waits for each sleep, so
# kill -0 fails from the next poll on.
vmm_running() { kill -0 "$pid" 2>/dev/null; }

# The VMM is gone while the demo still waited on it: say how it ended and why.
vmm_died() { # vmm_died WHAT-WAS-AWAITED
	wait "$pid" && status=0 || status=$?
	pid=
	echo "demo: vm-fork exited with status $status while waiting for $1" >&2
	show_vmm_log
	exit 1
}

wait_for() { # wait_for FILE TEXT COUNT
	i=0
	while [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -lt "$3" ]; do
		vmm_running || vmm_died "'$2' in $1"
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			echo "demo: timed out waiting for '$2' in $1" >&2
			[ "$1" = "$dir/template.log" ] || sed 's/^/   waited| /' "$1" >&2 2>/dev/null || true
			show_vmm_log
			exit 1
		fi
		sleep 0.1
	done
}

echo "== 1. boot the template: 256 MiB of guest RAM in a memfd, control API at $api"
"$vmfork" run --kernel "$guest" --mem 256M --cmdline "mib=64 clones=$clones" \
	--api "$api" --shells "$clones" --clone-console "file:$dir/clone-%u.log" \
	>"$dir/template.log" 2>&1 &
pid=$!
wait_for "$dir/template.log" "template ready" 1
sed 's/^/   template| /' "$dir/template.log"

# Warm shells are made in the background at idle priority: wait until they are ready.
shells_prepared() { # 0 while the API does not answer
	n=$(curl -s --unix-socket "$api" http://localhost/v1/info | grep -o '"prepared": *[0-9]*' | grep -o '[0-9]*$' || true)
	echo "${n:-0}"
}
wait_shells() {
	i=0
	while [ "$(shells_prepared)" -lt "$clones" ] && [ $i -lt 100 ]; do
		vmm_running || vmm_died "the warm shells"
		i=$((i + 1))
		sleep 0.1
	done
}
wait_shells
echo "== 2. freeze it and fork $clones clones (each continues from the same instruction)"
"$vmfork" pause --api "$api" --id 0 | sed "s/^/   /"
"$vmfork" fork --api "$api" --id 0 --count "$clones" | sed 's/^/   /'
for id in $(seq 1 "$clones"); do wait_for "$dir/clone-$id.log" "demo: clone" 1; done

echo "== 3. what each clone did with the shared table"
cat "$dir"/clone-*.log | sort -t' ' -k3 -n | sed 's/^/   /'

echo "== 4. what they cost: PRIVATE is host memory a VM has of its own (pages it wrote)"
sleep 0.2
"$vmfork" info --api "$api" | sed 's/^/   /'

wait_shells
echo "== 5. fork $clones more: the warm shells now hold the template's memory and state"
"$vmfork" fork --api "$api" --id 0 --count "$clones" | tail -1 | sed 's/^/   /'
for id in $(seq $((clones + 1)) $((2 * clones))); do wait_for "$dir/clone-$id.log" "demo: clone" 1; done
echo "   all $((2 * clones)) clones finished; failures: $(grep -c MISMATCH "$dir"/clone-*.log | grep -vc ':0$' || true)"

"$vmfork" stop --api "$api" --id 0 >/dev/null
wait "$pid" && status=0 || status=$?
pid=
echo "== done: vm-fork exited with status $status"
exit "$status"
