#!/bin/sh
# Fuzz the state-file parser, a process clone's state file (its header, the
# same FDT validator, its page ranges), and the virtqueue and virtio-mmio
# transport against a hostile guest's rings and registers, with libFuzzer under
# AddressSanitizer and UBSan. Usage: tests/fuzz/run-fuzz.sh [RUNS [TARGET...]]
# (default 1000000 runs of every target). Not part of make test: it takes
# minutes. Needs clang (installed here if missing).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-1000000}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_statefile fuzz_procmsg fuzz_virtqueue}
out=${BUILD:-build}/fuzz
mkdir -p "$out/lib"
if ! command -v clang >/dev/null; then
	echo "run-fuzz: installing clang (Debian) for libFuzzer"
	apt-get install -y -qq clang >/dev/null
fi
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
flags="-g -O1 $san -std=gnu11 -D_GNU_SOURCE -I."
libs="-lfdt -llzma -lz -lzstd -pthread"
# core/ and devices/ as one instrumented archive: the state file checks each
# device's state through the device table, which names every device.
rm -f "$out/lib/"*.o "$out/libfuzzdev.a"
for src in core/*.c devices/*.c; do
	obj=$out/lib/$(echo "$src" | tr / _).o
	# shellcheck disable=SC2086
	clang $flags -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
done
ar rcs "$out/libfuzzdev.a" "$out/lib/"*.o
build() {
	name=$1
	shift
	# shellcheck disable=SC2086
	clang $flags -fsanitize=fuzzer "tests/fuzz/$name.c" "$@" "$out/libfuzzdev.a" $libs \
		-o "$out/$name"
}
build fuzz_statefile state/statefile.c tests/fuzz/stubs.c
# A process clone's state file: the same validator behind procmsg's header and ranges.
build fuzz_procmsg fork/procmsg.c state/statefile.c tests/fuzz/stubs.c
# The guest's rings, descriptors and register accesses (virtio-rng behind the transport).
build fuzz_virtqueue
for target in $targets; do
	mkdir -p "$out/corpus-$target"
	VMFORK_FUZZ_SEEDS="$out/corpus-$target" "$out/$target" -runs="$runs" -max_len=65536 \
		-print_final_stats=1 "$out/corpus-$target"
done
