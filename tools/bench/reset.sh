#!/bin/sh
# Reset-in-place against its floor, in one run: guest/fuzz_loop resets itself
# every iteration after dirtying N pages; mode=floor does the same work with no
# reset (N fresh copy-on-write pages and one exit per iteration). Both report
# TSC cycles, so the ratio needs no clock conversion; resets/s use the TSC
# frequency the host reports. Usage: tools/bench/reset.sh [BUILD_DIR]
set -eu
build=${1:-build}
khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
cycles() { # cycles PAGES ITERS [mode=floor]
	"$build/vm-fork" run --kernel "$build/guest/fuzz_loop.elf" --mem 512M --console none \
		--cmdline "pages=$1 iters=$2 ${3:-}" -v 2>&1 | sed -n 's/.*guest report 2: .*(\([0-9]*\))/\1/p'
}
printf '%-8s %8s %16s %16s %12s %8s\n' pages iters "reset cyc/iter" "floor cyc/iter" "resets/s" ratio
for pages in 1 16 256; do
	iters=$([ "$pages" -eq 256 ] && echo 200 || echo 2000)
	r=$(cycles "$pages" "$iters")
	f=$(cycles "$pages" "$iters" mode=floor)
	awk -v p="$pages" -v n="$iters" -v r="$r" -v f="$f" -v khz="$khz" 'BEGIN {
		printf "%-8d %8d %16d %16d %12d %8.2f\n", p, n, r / n, f / n, n * khz * 1000 / r, r / f }'
done
echo "target: reset within 1.5x of the floor"
