#!/bin/sh
# make check: every #include of the project's own headers points down (or
# across) the layers, never up. The layers, bottom to top, are written here and
# nowhere else; a layer is a top-level folder. docs/architecture.md explains them.
#   core     KVM ioctls, guest memory, the I/O bus, console backends, CPUID, logs
#   devices  the emulated devices (UART, i8042, control device)
#   guest    the test guests and their runtime (they see the ABI headers below)
#   vmm      the VM, its vCPUs and booting
#   state    vCPU and VM state, its capture and load, the state file
#   fork     the fork engine, warm shells, reset, process clones, snapshots on
#            disk, and the registry of VMs they add clones to
#   server   the control API and the serverless pool
#   tools    the CLI and the benchmark
#   tests    the Criterion tests
# A lower layer reaches a higher one only through hooks the higher one
# installs (struct vm_guest_ops in vmm/vm.h, the devices' callbacks).
set -eu
cd "$(dirname "$0")/.."
LAYERS="core devices guest vmm state fork server tools tests"

rank() { # rank LAYER: its position, or nothing if it is not a layer
	i=0
	for l in $LAYERS; do
		[ "$l" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
}

bad=0
for layer in $LAYERS; do
	own=$(rank "$layer")
	for f in $(git ls-files "$layer/*.c" "$layer/*.h" "$layer/*.S" 2>/dev/null; \
		   git ls-files --others --exclude-standard "$layer/*.c" "$layer/*.h" "$layer/*.S"); do
		grep -n '^#include "[a-z_]*/' "$f" | while IFS= read -r line; do
			dep=$(echo "$line" | sed 's/^[0-9]*:#include "\([a-z_]*\)\/.*/\1/')
			r=$(rank "$dep")
			if [ -n "$r" ] && [ "$r" -gt "$own" ]; then
				echo "$f:${line%%:*}: $layer includes from $dep, a layer above it: ${line#*:}"
			fi
		done
	done
done >"${TMPDIR:-/tmp}/check-layers.$$"
if [ -s "${TMPDIR:-/tmp}/check-layers.$$" ]; then
	cat "${TMPDIR:-/tmp}/check-layers.$$" >&2
	echo "check-layers: $(wc -l <"${TMPDIR:-/tmp}/check-layers.$$") upward includes (layers, bottom to top: $LAYERS)" >&2
	bad=1
else
	echo "check-layers: no upward include (layers, bottom to top: $LAYERS)"
fi
rm -f "${TMPDIR:-/tmp}/check-layers.$$"
exit $bad
