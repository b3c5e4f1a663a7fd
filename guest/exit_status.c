/*
 * exit_status: exits with the status given on the command line.
 * cmdline: "status=N" (decimal or 0x hex; default 0). The VMM keeps N & 0xff.
 * REPORT:  N as parsed
 * exit:    N
 */
#include "rt.h"

int main(void)
{
	uint64_t status = rt_arg_u64("status", 0);

	rt_report(status);
	return (int)(status & 0xff);
}
