/* The i8042 controller: status, command byte, self test and the two reset paths. */
#include <criterion/criterion.h>

#include "devices/i8042.h"

static void count_reset(void *opaque)
{
	(*(unsigned *)opaque)++;
}

static uint8_t kbd_in(struct i8042 *kbd, bool cmd_port)
{
	uint8_t v = 0xee;

	(cmd_port ? &i8042_cmd_ops : &i8042_data_ops)->io(kbd, 0, &v, 1, false);
	return v;
}

static void kbd_out(struct i8042 *kbd, bool cmd_port, uint8_t v)
{
	(cmd_port ? &i8042_cmd_ops : &i8042_data_ops)->io(kbd, 0, &v, 1, true);
}

Test(i8042, status_after_init)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	uint8_t st = kbd_in(&kbd, true);

	cr_assert_eq(st & 0x01, 0, "output buffer must be empty");
	cr_assert_eq(st & 0x02, 0, "input buffer is never busy");
	cr_assert_eq(st & 0x04, 0x04, "system flag set");
	cr_assert_neq(st, 0xff);
	i8042_destroy(&kbd);
}

Test(i8042, self_test)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	kbd_out(&kbd, true, 0xaa);
	cr_assert_eq(kbd_in(&kbd, true) & 0x01, 0x01);
	cr_assert_eq(kbd_in(&kbd, false), 0x55);
	cr_assert_eq(kbd_in(&kbd, true) & 0x01, 0, "reading 0x60 empties the buffer");
	cr_assert_eq(resets, 0);
	i8042_destroy(&kbd);
}

Test(i8042, command_byte)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	kbd_out(&kbd, true, 0x60);
	kbd_out(&kbd, false, 0x65);
	kbd_out(&kbd, true, 0x20);
	cr_assert_eq(kbd_in(&kbd, false), 0x65);
	/* Enable/disable commands flip the clock-disable bits. */
	kbd_out(&kbd, true, 0xad);
	kbd_out(&kbd, true, 0xa7);
	kbd_out(&kbd, true, 0x20);
	cr_assert_eq(kbd_in(&kbd, false), 0x75);
	kbd_out(&kbd, true, 0xae);
	kbd_out(&kbd, true, 0xa8);
	kbd_out(&kbd, true, 0x20);
	cr_assert_eq(kbd_in(&kbd, false), 0x45);
	/* Data with no pending command goes to the (absent) keyboard. */
	kbd_out(&kbd, false, 0x00);
	kbd_out(&kbd, true, 0x20);
	cr_assert_eq(kbd_in(&kbd, false), 0x45);
	cr_assert_eq(resets, 0);
	i8042_destroy(&kbd);
}

Test(i8042, reset_pulse)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	kbd_out(&kbd, true, 0xfe);
	cr_assert_eq(resets, 1);
	kbd_out(&kbd, true, 0xff); /* pulses nothing */
	cr_assert_eq(resets, 1);
	i8042_destroy(&kbd);
}

Test(i8042, output_port_reset)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	kbd_out(&kbd, true, 0xd1);
	kbd_out(&kbd, false, 0x03); /* bit 0 set: CPU keeps running */
	cr_assert_eq(resets, 0);
	kbd_out(&kbd, true, 0xd1);
	kbd_out(&kbd, false, 0x02);
	cr_assert_eq(resets, 1);
	/* Without the 0xd1 command, the same byte is not an output port write. */
	kbd_out(&kbd, false, 0x02);
	cr_assert_eq(resets, 1);
	i8042_destroy(&kbd);
}

Test(i8042, unknown_commands_ignored)
{
	struct i8042 kbd;
	unsigned resets = 0;

	i8042_init(&kbd, count_reset, &resets);
	kbd_out(&kbd, true, 0xc0);
	kbd_out(&kbd, true, 0x00);
	kbd_out(&kbd, false, 0x12);
	cr_assert_eq(kbd_in(&kbd, true) & 0x01, 0);
	cr_assert_eq(resets, 0);
	i8042_destroy(&kbd);
}
