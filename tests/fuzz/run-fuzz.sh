#!/bin/sh
# Fuzz the state-file parser, and a process clone's state file (its header, the
# same FDT validator, its page ranges), with libFuzzer under AddressSanitizer and
# UBSan. Usage: tests/fuzz/run-fuzz.sh [RUNS] (default 1000000). Not part of
# make test: it takes minutes. Needs clang (installed here if missing).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-1000000}
out=${BUILD:-build}/fuzz
mkdir -p "$out"
if ! command -v clang >/dev/null; then
	echo "run-fuzz: installing clang (Debian) for libFuzzer"
	apt-get install -y -qq clang >/dev/null
fi
# The state file checks each device's state through the device table.
devices="devices/table.c devices/uart.c devices/i8042.c core/bus.c"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE -I."
# shellcheck disable=SC2086
clang $flags tests/fuzz/fuzz_statefile.c state/statefile.c $devices tests/fuzz/stubs.c core/log.c \
	-lfdt -lz -o "$out/fuzz_statefile"
# A process clone's state file: the same validator behind procmsg's header and ranges.
# shellcheck disable=SC2086
clang $flags tests/fuzz/fuzz_procmsg.c fork/procmsg.c state/statefile.c $devices core/memory_cow.c \
	core/memory.c core/kvm.c core/cpuid.c tests/fuzz/stubs.c core/log.c \
	-lfdt -lz -o "$out/fuzz_procmsg"
for target in fuzz_statefile fuzz_procmsg; do
	mkdir -p "$out/corpus-$target"
	VMFORK_FUZZ_SEEDS="$out/corpus-$target" "$out/$target" -runs="$runs" -max_len=65536 \
		-print_final_stats=1 "$out/corpus-$target"
done
