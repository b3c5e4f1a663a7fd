/*
 * The vm-fork control device: the guest ABI shared by the VMM and our guests.
 * docs/guest-abi.md describes it for people. An MMIO page at VMFORK_CTL_BASE;
 * every register is 64 bits wide and accessed with an aligned 8-byte access
 * (other sizes and unknown offsets read as 0 and writes are ignored), so guest
 * code at CPL3 can use it with plain loads and stores.
 */
#ifndef VMFORK_CTL_ABI_H
#define VMFORK_CTL_ABI_H

#define VMFORK_CTL_BASE     0xd0000000ULL
#define VMFORK_CTL_SIZE     0x1000ULL

#define VMFORK_CTL_MAGIC_VALUE 0x4b524f464d56ULL /* "VMFORK" little-endian */
#define VMFORK_CTL_VERSION_VALUE 1ULL

/* Register offsets. RO: read only, WO: write only. */
#define VMFORK_CTL_MAGIC      0x00 /* RO: VMFORK_CTL_MAGIC_VALUE */
#define VMFORK_CTL_VERSION    0x08 /* RO: ABI version */
#define VMFORK_CTL_EXIT       0x10 /* WO: stop the VM; vm-fork exits with value & 0xff */
#define VMFORK_CTL_LOG        0x18 /* WO: GPA of a struct vmfork_log_msg to print */
#define VMFORK_CTL_CLONE_ID   0x20 /* RO: 0 for a VM that was booted, else its clone id */
#define VMFORK_CTL_GENERATION 0x28 /* RO: fork depth: 0 booted, 1 its clone, ... */
#define VMFORK_CTL_NCPUS      0x30 /* RO: vCPUs in this VM */
#define VMFORK_CTL_REPORT     0x38 /* WO: append a value to the VM's report list (tests) */
/*
 * Guest-requested fork, with fork() semantics. Writing N (1..VMFORK_MAX_GUEST_FORK)
 * to FORK forks the VM into N children; the write completes in the parent and in
 * every child, which all continue after it. Then:
 *   parent: FORK_RESULT = N (or a negative errno, two's complement: nothing was
 *           forked; -EBUSY (-16) when the host was pausing the VM at that
 *           moment: retry), FORK_FIRST_ID = the clone id of child 1 (children get
 *           consecutive ids), CHILD_INDEX unchanged;
 *   child i (1..N): FORK_RESULT = 0, CHILD_INDEX = i, CLONE_ID its own id,
 *           GENERATION = the parent's + 1.
 * Forks made by the host (API, CLI) change CLONE_ID, GENERATION and CHILD_INDEX
 * in the children the same way; a guest that must notice polls them.
 */
#define VMFORK_CTL_FORK        0x40 /* WO: fork into N children */
#define VMFORK_CTL_FORK_RESULT 0x48 /* RO: see above; 0 before any fork */
#define VMFORK_CTL_CHILD_INDEX 0x50 /* RO: 0 in a booted VM, i in child i of a fork */
#define VMFORK_CTL_FORK_FIRST_ID 0x58 /* RO: parent: clone id of child 1 of its last fork */

#define VMFORK_MAX_GUEST_FORK 64

/*
 * Reset-in-place, for fuzzing. Writing to SNAPSHOT marks this point: the VMM
 * captures the VM (registers, devices, memory) as it is right after the
 * write. Writing anything to RESET returns the VM to that point: the pages
 * written since the last reset read as at the mark again, the vCPUs and
 * devices reloaded, and execution continues right after the SNAPSHOT write
 * again. RESETS counts the resets so far and is not reset itself, so the
 * guest can tell its iterations apart; REPORT values and log lines already
 * sent stay with the host. The value written to SNAPSHOT is the GPA of a u64
 * in RAM (or 0): after every reset the VMM stores RESETS there, so a guest
 * learns its iteration without another exit. SNAPSHOT_RESULT is 0 after a
 * mark, a negative errno when it failed; a RESET with no mark does nothing.
 */
#define VMFORK_CTL_SNAPSHOT    0x60 /* WO: mark the reset point */
#define VMFORK_CTL_RESET       0x68 /* WO: return to the reset point */
#define VMFORK_CTL_RESETS      0x70 /* RO: resets so far */
#define VMFORK_CTL_SNAPSHOT_RESULT 0x78 /* RO: result of the last mark */

/*
 * Fuzzing under `vm-fork fuzz` (docs/guest-abi.md, "Fuzzing"). A harness
 * reads where its input and the coverage map are, marks its start with
 * SNAPSHOT, and ends each run with DONE or CRASH: the VMM reports the run to
 * the fuzzer, returns the VM to the mark and loads the next input before the
 * harness runs on after the SNAPSHOT write again. The input region (a struct
 * vmfork_fuzz_input) and the map are memory of their own outside RAM, not
 * reset: the map is the fuzzer's (AFL++'s shared memory) and the input is
 * read-only to the guest. Outside `vm-fork fuzz` the address registers read
 * 0 and DONE and CRASH are ignored (counted as bad accesses).
 */
#define VMFORK_CTL_FUZZ_INPUT     0x80 /* RO: GPA of the input region, 0: not fuzzing */
#define VMFORK_CTL_FUZZ_INPUT_MAX 0x88 /* RO: bytes of input data the region holds at most */
#define VMFORK_CTL_FUZZ_MAP       0x90 /* RO: GPA of the coverage map, 0: no coverage */
#define VMFORK_CTL_FUZZ_MAP_SIZE  0x98 /* RO: its size in bytes (a power of 2) */
#define VMFORK_CTL_FUZZ_DONE      0xa0 /* WO: the run ended well; the value is ignored */
#define VMFORK_CTL_FUZZ_CRASH     0xa8 /* WO: the run crashed; the value says how (below) */

/*
 * CRASH values: a CPU exception the guest caught, a signal that killed a
 * program in a Linux guest, or any other value: the harness's own code.
 */
#define VMFORK_FUZZ_CRASH_EXCEPTION 0x100ULL /* | vector (0..31) */
#define VMFORK_FUZZ_CRASH_SIGNAL    0x200ULL /* | signal number (1..64) */

struct vmfork_fuzz_input {
	unsigned long long len;  /* bytes of data in this run's input */
	unsigned char data[];
};

#define VMFORK_LOG_MAX 4000 /* bytes of text per message; longer is cut */

struct vmfork_log_msg {
	unsigned int len;       /* bytes in text, no NUL needed */
	unsigned int reserved;  /* 0 */
	char text[];
};

#endif
