/*
 * hello: the smallest guest.
 * LOG:    "hello from vm-fork guest at CPL3"
 * REPORT: the CPL main() runs at (3)
 * exit:   0
 */
#include "rt.h"

int main(void)
{
	rt_puts("hello from vm-fork guest at CPL3\n");
	rt_report(rt_cpl());
	return 0;
}
