/* The command line's device options (tools/cli.h CLI_DEVICE_OPTIONS). */
#include <stdio.h>

#include "core/device.h"
#include "tools/cli.h"

const char cli_devices_help[] =
	"Devices (virtio-mmio, found by the guest through ACPI; each clone gets its own):\n"
	"      --rng             an entropy device (virtio-rng), fed by the host's getrandom()\n"
	"      --disk FILE[,ro]  a disk (virtio-blk); from a VM's first fork on, FILE is never\n"
	"                        written again: each VM's writes go to its own overlay\n"
	"      --vsock PATH      vsock (virtio-vsock): the host connects to the Unix socket\n"
	"                        PATH and writes 'CONNECT <port>\\n'; the guest's connections\n"
	"                        to port P reach PATH_P; in a clone %u in PATH is its id\n"
	"      --net tap:NAME[,mac=MAC]  a network card (virtio-net) on the existing TAP\n"
	"                        device NAME; in a clone %u in NAME is its id (without\n"
	"                        one a clone has no link); each clone has its own MAC\n";

int cli_device_option(const char *cmd, const char *name, const char *arg,
		      struct device_config *cfg)
{
	int index = device_by_option(name);

	if (index < 0) {
		fprintf(stderr, "vm-fork %s: --%s: this build has no such device yet\n", cmd, name);
		return CLI_EXIT_USAGE;
	}
	if (cfg->args[index]) {
		fprintf(stderr, "vm-fork %s: --%s given twice: one of each device\n", cmd, name);
		return CLI_EXIT_USAGE;
	}
	cfg->args[index] = arg ? arg : "";
	return 0;
}
