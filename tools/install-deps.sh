#!/bin/sh
# Install the Debian packages listed in a file (default configs/debian-packages.txt)
# that are missing.
# Run as root (or with sudo available); does nothing when all are present.
# apt's own output goes to a log under ${TMPDIR:-/tmp}: this prints the packages,
# then one line when apt is done, or the log's end when it failed. When another
# apt holds its lock (unattended-upgrades on a fresh machine), it waits up to 10 min.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
list=${1:-"$here/configs/debian-packages.txt"}
lock_wait=600
missing=""
for pkg in $(grep -v '^#' "$list"); do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root to install:$missing" >&2; exit 1; }
	SUDO=sudo
else
	SUDO=
fi
log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX")
echo "install-deps: installing:$missing (apt's log: $log)"

# apt-get with its output appended to the log; its exit status lands in $log.status
# (a pipeline's status is its last command's). env carries the settings through
# sudo, which drops the caller's environment; LC_ALL=C keeps apt's messages the
# English ones searched for here. The first time apt says it waits for another
# apt's lock, the user hears of it: that wait can last minutes.
apt_logged() {
	{
		$SUDO env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
			apt-get -q -o DPkg::Lock::Timeout=$lock_wait "$@" && s=0 || s=$?
		echo "$s" >"$log.status"
	} 2>&1 | {
		told=
		while IFS= read -r line; do
			printf '%s\n' "$line" >>"$log"
			case "$line" in
			*"Waiting for cache lock"*)
				[ -n "$told" ] || echo "install-deps: another apt holds the dpkg lock; waiting for it"
				told=1 ;;
			esac
		done
	}
	s=$(cat "$log.status")
	rm -f "$log.status"
	return "$s"
}

fail() { # fail WHAT STATUS
	echo "install-deps: $1 failed (exit status $2); the end of $log:" >&2
	tail -n 25 "$log" | sed 's/^/    /' >&2
	exit 1
}

# apt 2.6's DPkg::Lock::Timeout covers dpkg's locks, not the package lists' lock
# that 'apt-get update' takes: while another apt holds that one, try again.
update() {
	waited=0
	while :; do
		lines=$(wc -l <"$log")
		status=0
		apt_logged update || status=$?
		[ "$status" -eq 0 ] && return 0
		if [ "$waited" -ge "$lock_wait" ] ||
			! tail -n +$((lines + 1)) "$log" | grep -q 'Could not get lock'; then
			fail "apt-get update" "$status"
		fi
		[ "$waited" -eq 0 ] && echo "install-deps: another apt holds the package lists' lock; waiting for it"
		sleep 5
		waited=$((waited + 5))
	done
}

update
status=0
# shellcheck disable=SC2086
apt_logged install -y --no-install-recommends $missing || status=$?
[ "$status" -eq 0 ] || fail "apt-get install" "$status"
summary=$(grep -E '^[0-9]+ upgraded, [0-9]+ newly installed' "$log" | tail -n 1)
echo "install-deps: done${summary:+: $summary}"
