/*
 * The one library function the state-file parser calls outside statefile.c,
 * so the fuzzer links without the VMM (vm_snapshot.c needs devices and KVM).
 * It does what state/vm_snapshot.c's does.
 */
#include <stdlib.h>

#include "state/vm_snapshot.h"

void vm_snapshot_free(struct vm_snapshot *snap)
{
	free(snap->vcpus);
	snap->vcpus = NULL;
}
