/*
 * uart: CPL0 code writes to COM1 by port I/O, polling LSR.THRE before each byte.
 * COM1:   "uart: hello\n"
 * REPORT: none
 * exit:   0
 */
#include "rt.h"

RT_CPL0 void cpl0_setup(void)
{
	rt_uart_puts("uart: hello\n");
}

int main(void)
{
	return 0;
}
