#!/bin/sh
# Fuzz the snapshot state-file parser with libFuzzer under AddressSanitizer and
# UBSan. Usage: tests/fuzz/run-fuzz.sh [RUNS] (default 1000000). Not part of
# make test: it takes minutes. Needs clang (installed here if missing).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-1000000}
out=${BUILD:-build}/fuzz
mkdir -p "$out/corpus"
if ! command -v clang >/dev/null; then
	echo "run-fuzz: installing clang (Debian) for libFuzzer"
	apt-get install -y -qq clang >/dev/null
fi
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -D_GNU_SOURCE -I. \
	tests/fuzz/fuzz_statefile.c state/statefile.c tests/fuzz/stubs.c core/log.c \
	-lfdt -lz -o "$out/fuzz_statefile"
export VMFORK_FUZZ_SEEDS="$out/corpus"
"$out/fuzz_statefile" -runs="$runs" -max_len=65536 -print_final_stats=1 "$out/corpus"
