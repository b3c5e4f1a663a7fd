#!/bin/sh
# Run the Criterion test binary; ends with Criterion's summary line.
# On a nested host with emulated CPL0 (kvm_pvm) the guest tests are slower; say so.
set -u
bin=$1
shift
if [ -d /sys/module/kvm_pvm ]; then
	echo "run-tests: nested PVM KVM host: guest CPL0 code is emulated, Linux stops early"
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "run-tests: /dev/kvm is not usable here: the guest tests will skip and say why"
fi
"$bin" "$@"
status=$?
exit $status
