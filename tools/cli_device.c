/* The command line's device options (tools/cli.h CLI_DEVICE_OPTIONS). */
#include <stdio.h>

#include "core/device.h"
#include "tools/cli.h"

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
