/*
 * reset: CPL0 code pulses the CPU reset line through the i8042 (0xfe to port
 * 0x64), as Linux's reboot=k does. The VMM should stop (or reset) the VM then.
 * REPORT: none
 * exit:   never returns when the VMM honours the reset; 99 if the write came back
 */
#include "core/layout.h"
#include "rt.h"

#define RESET_IGNORED 99

RT_CPL0 void cpl0_setup(void)
{
	asm volatile("outb %0, %1" : : "a"((uint8_t)0xfe), "Nd"((uint16_t)I8042_CMD_PORT));
	rt_exit(RESET_IGNORED);
}

int main(void)
{
	return RESET_IGNORED;
}
