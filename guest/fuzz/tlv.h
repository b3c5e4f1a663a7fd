/*
 * The example fuzz target's parser: a small binary format with bugs planted
 * for a fuzzer to find. The same code runs as a guest under vm-fork fuzz
 * (guest/fuzz_target.c) and as a Linux process built with afl-clang-fast
 * (guest/fuzz/native.c), so the two can be timed side by side.
 *
 *   "VMFZ"                 magic, checked a byte at a time: a chain that
 *                          coverage lets a fuzzer climb one byte at a time
 *   then records, each an op byte and its fields:
 *   'A' n, n bytes         add the bytes to a sum
 *   'W' count (u16 LE), v  fill count bytes of the scratch buffer with v.
 *                          BUG: count is not checked against the 256 bytes
 *                          of scratch: an out-of-bounds write (a guard page
 *                          follows the buffer, so it faults)
 *   'J' skip               go on at this record's start + skip.
 *                          BUG: skip 0 loops forever (a hang)
 *   'E' x                  the end: x must be the sum's low byte
 * Returns 0 for a well-formed input, 1 when the magic is wrong, 2 for a bad
 * checksum, 3 for an unknown op or a record cut short.
 */
#ifndef GUEST_FUZZ_TLV_H
#define GUEST_FUZZ_TLV_H

#include <stddef.h>
#include <stdint.h>

#define TLV_SCRATCH 256

static int tlv_magic(const uint8_t *in, size_t len)
{
	if (len < 4)
		return 0;
	if (in[0] == 'V')
		if (in[1] == 'M')
			if (in[2] == 'F')
				if (in[3] == 'Z')
					return 1;
	return 0;
}

static int tlv_parse(const uint8_t *in, size_t len, uint8_t *scratch)
{
	size_t pos = 4;
	unsigned sum = 0;

	if (!tlv_magic(in, len))
		return 1;
	while (pos < len) {
		size_t start = pos;
		uint8_t op = in[pos++];

		if (op == 'A') {
			if (pos >= len || len - pos - 1 < in[pos])
				return 3;
			for (unsigned i = 0; i < in[pos]; i++)
				sum += in[pos + 1 + i];
			pos += 1 + in[pos];
		} else if (op == 'W') {
			if (len - pos < 3)
				return 3;
			unsigned count = in[pos] | (unsigned)in[pos + 1] << 8;

			for (unsigned i = 0; i < count; i++)
				((volatile uint8_t *)scratch)[i] = in[pos + 2];
			pos += 3;
		} else if (op == 'J') {
			if (pos >= len)
				return 3;
			pos = start + in[pos];
		} else if (op == 'E') {
			if (pos >= len)
				return 3;
			return in[pos] == (sum & 0xff) ? 0 : 2;
		} else {
			return 3;
		}
	}
	return 0;
}

#endif
