/*
 * info: what the control device and the command line tell the guest.
 * LOG:    "info: magic 0x... version V clone C generation G ncpus N cmdline '...'"
 * REPORT: [0] MAGIC, [1] VERSION, [2] CLONE_ID, [3] GENERATION, [4] NCPUS,
 *         [5] CHILD_INDEX, [6] length of the command line
 * exit:   0 when MAGIC and VERSION are the ones in devices/ctl_abi.h, else 1
 */
#include "rt.h"

int main(void)
{
	uint64_t magic = rt_ctl_read(VMFORK_CTL_MAGIC);
	uint64_t version = rt_ctl_read(VMFORK_CTL_VERSION);
	const char *cmdline = rt_cmdline();

	rt_printf("info: magic 0x%lx version %lu clone %lu generation %lu ncpus %u cmdline '%s'\n",
		  magic, version, rt_clone_id(), rt_generation(), rt_ncpus(), cmdline);
	rt_report(magic);
	rt_report(version);
	rt_report(rt_clone_id());
	rt_report(rt_generation());
	rt_report(rt_ncpus());
	rt_report(rt_ctl_read(VMFORK_CTL_CHILD_INDEX));
	rt_report(strlen(cmdline));
	return magic == VMFORK_CTL_MAGIC_VALUE && version == VMFORK_CTL_VERSION_VALUE ? 0 : 1;
}
