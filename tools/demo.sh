#!/bin/sh
# The README's main command: boot a small guest on 4 vCPUs, show its console,
# exit with its status.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}
echo "demo: booting build/guest/smp.elf on 4 vCPUs with 256 MiB (guest RAM in a memfd)"
status=0
"$build/vm-fork" run --kernel "$build/guest/smp.elf" --cpus 4 --mem 256M --console stdio || status=$?
echo "demo: the guest exited with status $status"
exit "$status"
