/*
 * vm-fork fuzz for a program inside a Linux guest (docs/fuzzing.md): the
 * same calls as guest/rt's rt_fuzz_*, over /dev/mem. Link vmfork_fuzz.c (built
 * without coverage) into a static program whose own files are built with
 * clang's -fsanitize-coverage=trace-pc-guard.
 *
 *   vmfork_fuzz_start()  maps the control device, the input and the map,
 *                        catches the signals a crash raises, marks the point
 *                        every run starts from, and returns this run's input
 *                        (NULL, with errno, when not under vm-fork fuzz)
 *   vmfork_fuzz_done()   the run ended well; the VM goes back to the mark
 *   vmfork_fuzz_crash(c) the run crashed with the program's own code c
 * A SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGABRT or SIGTRAP ends the run as a
 * crash of that signal. The whole VM, kernel included, is reset between runs.
 */
#ifndef VMFORK_FUZZ_H
#define VMFORK_FUZZ_H

#include <stddef.h>
#include <stdint.h>

const uint8_t *vmfork_fuzz_start(size_t *len);
void vmfork_fuzz_done(void) __attribute__((noreturn));
void vmfork_fuzz_crash(uint64_t code) __attribute__((noreturn));

#endif
