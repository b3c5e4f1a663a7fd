/*
 * AFL++'s forkserver protocol, the target's side, for `vm-fork fuzz`:
 * afl-fuzz writes commands on fd 198 and reads answers on fd 199, each a
 * 4-byte host-endian word. This is AFL++ 4.04c's protocol (Debian 12's),
 * which later AFL++ still accepts (../shared/notes/afl-forkserver.md).
 *
 *   hello     target -> afl: ENABLED | MAPSIZE | (map_size - 1) << 1
 *                            [| SHDMEM_FUZZ: then afl -> target 0x81000001]
 *   each run  afl -> target: was_killed (1: the last run was killed on timeout)
 *             target -> afl: the pid afl-fuzz kills on a timeout, then the
 *                            run's wait status (a signal: a crash)
 */
#ifndef SERVER_AFL_FORKSERVER_H
#define SERVER_AFL_FORKSERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AFL_FS_CTL_FD 198
#define AFL_FS_ST_FD  199

#define AFL_FS_OPT_ENABLED     0x80000001u
#define AFL_FS_OPT_MAPSIZE     0x40000000u
#define AFL_FS_OPT_SHDMEM_FUZZ 0x01000000u
#define AFL_FS_MAP_MAX         (1u << 23)   /* the largest map the hello can say */

struct afl_forkserver {
	int ctl, st;                /* afl-fuzz's commands, our answers */
	bool shm_input;             /* afl-fuzz agreed to pass inputs in shared memory */
};

/*
 * Say hello on ctl/st: a coverage map of map_size bytes (2 .. AFL_FS_MAP_MAX),
 * and, with shm_input, ask for inputs in shared memory (__AFL_SHM_FUZZ_ID).
 * 0, -EINVAL (map size), -EPROTO (afl-fuzz's reply is not the agreement),
 * -EPIPE (afl-fuzz is gone) or -errno.
 */
int afl_fs_hello(struct afl_forkserver *fs, int ctl, int st, uint32_t map_size, bool shm_input);
/* Wait for the next run's command: 0 with *was_killed, -EPIPE when afl-fuzz closed, -errno. */
int afl_fs_next(struct afl_forkserver *fs, bool *was_killed);
/* The run started: pid (> 0) is what afl-fuzz kills on a timeout. 0 or -errno. */
int afl_fs_started(struct afl_forkserver *fs, pid_t pid);
/* The run ended with this wait status (W_EXITCODE / a signal number: a crash). 0 or -errno. */
int afl_fs_finished(struct afl_forkserver *fs, int status);

#endif
