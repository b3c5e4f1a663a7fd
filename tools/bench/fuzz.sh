#!/bin/sh
# make bench's fuzzing rows (issue 11), all in one run: afl-fuzz through
# `vm-fork fuzz` on the example guest against afl-fuzz on the same parser built
# as a Linux process (afl-clang-fast, forkserver mode), the reset floor with no
# afl-fuzz (--replay --runs), execs/s per core over 1, 2 and N instances
# (-M/-S, N = nproc capped at 8) and memory per instance in the N run.
# Usage: tools/bench/fuzz.sh BUILD_DIR   (run where KVM is: tools/with-kvm.sh)
# FUZZ_BENCH_SECS: seconds per afl-fuzz run (default 20). Work files and the
# afl-fuzz logs go to BUILD_DIR/bench/fuzz; the table to stdout.
set -eu
build=${1:?usage: fuzz.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
secs=${FUZZ_BENCH_SECS:-20}
work=$build/bench/fuzz
vmf=$build/vm-fork
guest=$build/guest/fuzz_target.elf
native=$build/fuzz/tlv-native
die() { echo "fuzz bench: $*" >&2; exit 1; }
say() { echo "fuzz bench: $*" >&2; }

case $secs in '' | *[!0-9]* | [0-4]) die "FUZZ_BENCH_SECS must be a whole number of seconds, 5 or more, not '$secs'" ;; esac
command -v afl-fuzz >/dev/null 2>&1 || die "afl-fuzz not installed (Debian: afl++)"
for f in "$vmf" "$guest" "$native"; do
	[ -f "$f" ] || die "$f missing (make all $native)"
done
kind=${VMFORK_KVM_KIND:-$("$here/../with-kvm.sh" --kind)} || die "tools/with-kvm.sh --kind failed"
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
ncpu=$(nproc)
nmax=$((ncpu < 8 ? ncpu : 8))

rm -rf "$work"
mkdir -p "$work/in"
# Seeds that reach the parser's records but none of its planted bugs.
printf 'VMFZA\003abc' >"$work/in/a"
printf 'VMFZW\020\000\101A\001xE\170' >"$work/in/w"

# afl LOG AFL-FUZZ-ARGS...: one afl-fuzz for $secs seconds, its log kept.
afl() {
	log=$1
	shift
	timeout -k 10 $((secs + 120)) afl-fuzz -V "$secs" -t 1000 "$@" >"$log" 2>&1 ||
		{ rc=$?; tail -n 15 "$log" >&2; die "afl-fuzz failed (exit $rc); its log: $log"; }
}
# field DIR NAME: a field of DIR/fuzzer_stats, never empty.
field() {
	v=$(sed -n "s/^$2 *: *//p" "$1/fuzzer_stats" 2>/dev/null)
	[ -n "$v" ] || die "no $2 in $1/fuzzer_stats"
	echo "$v"
}

say "afl-fuzz on vm-fork fuzz, 1 instance, $secs s"
afl "$work/vmfork.log" -i "$work/in" -o "$work/vmfork" -- "$vmf" fuzz --kernel "$guest" @@
say "afl-fuzz on the native build ($native), $secs s"
afl "$work/native.log" -i "$work/in" -o "$work/native" -- "$native" @@
# One line each: an assignment fails (set -e) when its substitution does.
ver=$(field "$work/vmfork/default" afl_version)
v_stats=
for f in execs_per_sec corpus_count saved_crashes saved_hangs stability; do
	x=$(field "$work/vmfork/default" $f)
	v_stats="$v_stats $x"
	x=$(field "$work/native/default" $f)
	n_stats="${n_stats:-} $x"
done

say "reset floor: vm-fork fuzz --replay --runs 20000"
floor=$("$vmf" fuzz --kernel "$guest" --replay "$work/in/a" --runs 20000 2>&1) ||
	die "vm-fork fuzz --replay failed: $floor"
# shellcheck disable=SC2046 # three numbers, split on purpose
set -- $(echo "$floor" | sed -n 's/.*(\([0-9.]*\) runs\/s; reset \([0-9.]*\) us and \([0-9.]*\) pages a run).*/\1 \2 \3/p')
[ $# -eq 3 ] || die "cannot read runs/s and reset time in: $floor"
floor_rps=$1 floor_us=$2 floor_pages=$3

# mem_sample: one line per running instance, "PSS PRIVATE" in KiB, each summed
# over the vm-fork processes below one of $apids (the VMM and its timeout helper).
mem_sample() {
	ps -e -o pid=,ppid=,comm= | awk -v roots="$apids" '
		{ par[$1] = $2; comm[$1] = $3 }
		END {
			split(roots, r, " ")
			for (i in r) root[r[i]] = 1
			for (p in par) if (comm[p] == "vm-fork") {
				for (q = par[p]; q > 1 && !(q in root); q = par[q]) ;
				if (q in root) print q, p
			}
		}' | while read -r inst pid; do
		awk -v i="$inst" '/^Pss:/ { pss = $2 } /^Private_(Clean|Dirty):/ { priv += $2 }
			END { if (pss) print i, pss, priv }' "/proc/$pid/smaps_rollup" 2>/dev/null || true
	done | awk '{ pss[$1] += $2; priv[$1] += $3 } END { for (i in pss) print pss[i], priv[i] }'
}

rows=
for i in $(printf '%s\n' 1 2 "$nmax" | sort -nu); do
	say "afl-fuzz on vm-fork fuzz, $i instance(s), -M/-S, $secs s"
	apids=
	for k in $(seq 1 "$i"); do
		if [ "$k" -eq 1 ]; then role=-M name=m; else role=-S name=s$k; fi
		afl "$work/scale$i.$k.log" -i "$work/in" -o "$work/scale$i" "$role" "$name" -- "$vmf" fuzz --kernel "$guest" @@ &
		apids="$apids $!"
	done
	if [ "$i" -eq "$nmax" ]; then # sample memory after the first 2 s, once a second
		t=0
		while [ $((t += 1)) -lt "$secs" ]; do
			sleep 1
			[ "$t" -le 2 ] || mem_sample >>"$work/mem.txt"
		done
	fi
	for a in $apids; do wait "$a" || die "an afl-fuzz of the $i-instance run failed"; done
	sum=0 stab=100
	for k in $(seq 1 "$i"); do
		d=$work/scale$i/$([ "$k" -eq 1 ] && echo m || echo "s$k")
		e=$(field "$d" execs_per_sec)
		x=$(field "$d" stability)
		sum=$(awk -v s="$sum" -v e="$e" 'BEGIN { print s + e }')
		stab=$(awk -v s="$stab" -v x="${x%\%}" 'BEGIN { print x + 0 < s ? x + 0 : s }')
	done
	rows="$rows $i:$sum:$stab"
done
[ -s "$work/mem.txt" ] || die "no memory samples of the $nmax-instance run"

awk -v kind="$kind" -v secs="$secs" -v ncpu="$ncpu" -v nmax="$nmax" -v rows="$rows" \
	-v ver="$ver" -v guest="$guest" -v v_stats="$v_stats" -v n_stats="$n_stats" \
	-v f_rps="$floor_rps" -v f_us="$floor_us" -v f_pages="$floor_pages" '
	{ pss += $1; priv += $2; samples++ }
	END {
		split(v_stats, v, " "); v_eps = v[1]; v_corp = v[2]; v_cr = v[3]; v_hang = v[4]; v_stab = v[5]
		split(n_stats, w, " "); n_eps = w[1]; n_corp = w[2]; n_cr = w[3]; n_hang = w[4]; n_stab = w[5]
		sub(/^\+\+/, "", ver)
		printf "Fuzzing (afl++ %s, %d s per afl-fuzz run, 2 seeds, %s; %d CPUs)\n", ver, secs, guest, ncpu
		printf "KVM: %s\n", kind
		if (kind ~ /TCG|nested/)
			print "(TCG or nested KVM: the figures are not representative of hardware)"
		printf "\n%-22s %10s %-15s %s\n", "measurement", "value", "unit", "note"
		printf "%-22s %10.0f %-15s %s\n", "afl_vmfork", v_eps, "execs/s", \
			"1 instance; corpus " v_corp ", crashes " v_cr ", hangs " v_hang ", stability " v_stab
		printf "%-22s %10.0f %-15s %s\n", "afl_native", n_eps, "execs/s", \
			"afl-clang-fast, forkserver; corpus " n_corp ", crashes " n_cr ", hangs " n_hang ", stability " n_stab
		printf "%-22s %10.2f %-15s %s\n", "afl_vmfork_vs_native", v_eps / n_eps, "ratio", "vm-fork / native"
		printf "%-22s %10.0f %-15s %s\n", "reset_floor", f_rps, "runs/s", \
			"--replay --runs 20000, no afl-fuzz; reset " f_us " us, " f_pages " pages a run"
		printf "%-22s %10.2f %-15s %s\n", "afl_vmfork_vs_floor", v_eps / f_rps, "ratio", "afl_vmfork / reset_floor"
		n = split(rows, r, " ")
		for (k = 1; k <= n; k++) {
			split(r[k], f, ":")
			cores = f[1] < ncpu ? f[1] : ncpu
			if (k == 1) one = f[2] / cores
			printf "%-22s %10.0f %-15s %s\n", "afl_vmfork_per_core_" f[1], f[2] / cores, "execs/s/core", \
				sprintf("%d instance%s, -M/-S, %.0f execs/s in all; %.2f of 1 instance per core; stability >= %s%%", \
					f[1], f[1] > 1 ? "s" : "", f[2], f[2] / cores / one, f[3])
		}
		printf "%-22s %10.0f %-15s %s\n", "mem_per_instance_pss", pss / samples, "KiB", \
			sprintf("%d instance%s, mean of %d samples; VMM + its helper, from smaps_rollup", \
				nmax, nmax > 1 ? "s" : "", samples)
		printf "%-22s %10.0f %-15s %s\n", "mem_per_instance_priv", priv / samples, "KiB", \
			"the same, Private_Clean + Private_Dirty (the guest base is shared in the page cache)"
	}' "$work/mem.txt"
