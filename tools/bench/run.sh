#!/bin/sh
# make bench: run vm-fork-bench, keep its table, plot the results, and add the
# fuzzing rows (tools/bench/fuzz.sh; BENCH_FUZZ=0 skips them) and the firmware
# rows (tools/bench/firmware.sh; BENCH_FIRMWARE=0 skips them).
# Usage: tools/bench/run.sh BUILD_DIR [vm-fork-bench options]
# Options also come from $BENCH_ARGS (make bench BENCH_ARGS=--quick).
# Everything goes to BUILD_DIR/bench: table.txt, results.csv, results.json,
# plot.dat and latency.png (times), plot_mem.dat and memory.png (per-clone memory),
# fuzz.txt and fuzz/ (the fuzzing rows and their afl-fuzz runs).
set -eu
build=${1:?usage: run.sh BUILD_DIR [vm-fork-bench options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
out="$build/bench"
mkdir -p "$out"

# The table is printed once the run ends; progress goes to stderr meanwhile.
rc=0
# shellcheck disable=SC2086
"$build/vm-fork-bench" --out "$out" ${BENCH_ARGS:-} "$@" >"$out/table.txt" || rc=$?
cat "$out/table.txt"
[ "$rc" -eq 0 ] || { echo "bench: vm-fork-bench failed (exit $rc)" >&2; exit "$rc"; }

if command -v gnuplot >/dev/null 2>&1; then
	# A run with --only may leave a data file empty: nothing to plot then.
	if [ -s "$out/plot.dat" ]; then
		gnuplot -e "datafile='$out/plot.dat'; outfile='$out/latency.png'" "$here/plot.gp"
		echo "wrote $out/latency.png"
	fi
	if [ -s "$out/plot_mem.dat" ]; then
		gnuplot -e "datafile='$out/plot_mem.dat'; outfile='$out/memory.png'; \
			ylabel_text='KiB per idle clone'; \
			title_text='vm-fork-bench: host memory per idle clone vs guest RAM (log-log)'" \
			"$here/plot.gp"
		echo "wrote $out/memory.png"
	fi
else
	echo "bench: gnuplot not installed, no plot (apt-get install gnuplot-nox)" >&2
fi

# rows NAME: tools/bench/NAME.sh's rows, kept in NAME.txt, appended to the table and shown.
rows() {
	"$here/$1.sh" "$build" >"$out/$1.txt" || rc=$?
	[ "$rc" -eq 0 ] || { echo "bench: tools/bench/$1.sh failed (exit $rc)" >&2; exit "$rc"; }
	printf '\n' >>"$out/table.txt"
	cat "$out/$1.txt" >>"$out/table.txt"
	echo
	cat "$out/$1.txt"
}

# The fuzzing rows (tools/bench/fuzz.sh, BENCH_FUZZ=0 skips them).
if [ "${BENCH_FUZZ:-1}" = 0 ]; then
	echo "bench: fuzzing rows skipped (BENCH_FUZZ=0)" >&2
elif ! command -v afl-fuzz >/dev/null 2>&1; then
	echo "bench: afl-fuzz not installed, no fuzzing rows (apt-get install afl++)" >&2
	printf '\nFuzzing: not measured, afl-fuzz not installed\n' >>"$out/table.txt"
else
	rows fuzz
fi
# The firmware rows (tools/bench/firmware.sh, BENCH_FIRMWARE=0 skips them): vm-fork beside QEMU.
if [ "${BENCH_FIRMWARE:-1}" = 0 ]; then
	echo "bench: firmware rows skipped (BENCH_FIRMWARE=0)" >&2
else
	rows firmware
fi
echo "wrote $out/table.txt"
