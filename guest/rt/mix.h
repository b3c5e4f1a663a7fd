/*
 * splitmix64's finaliser: the pseudo-random patterns our guests write and
 * host tests check. Header-only, so host code can include it too.
 */
#ifndef GUEST_RT_MIX_H
#define GUEST_RT_MIX_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#endif
