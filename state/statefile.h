/*
 * A snapshot's state file: struct vm_snapshot and its metadata as a
 * flattened device tree (libfdt), so `dtc -I dtb -O dts state.dtb` shows it.
 *
 *   / {
 *       vm-fork,format = <1>;
 *       vm-fork,checksum = <CRC32 of the whole blob with this value taken as 0>;
 *       meta { mem-size, created, id, base-id = <u64 as two cells>;
 *              ncpus, diff = <u32>; source = "text"; };
 *       cpuid { entries = [struct kvm_cpuid_entry2 ...]; };     vCPU 0's CPUID
 *       vm { pit; clock; pic-master; pic-slave; ioapic; };       KVM structs
 *       cpus { cpu@N { mp-state; regs; sregs; xcrs; debugregs; lapic; events;
 *                      msrs = [struct kvm_msr_entry ...]; xsave = [bytes];
 *                      tsc-khz = <u32>; }; };
 *       devices { uart@3f8 { state }; i8042@60 { state };
 *                 ctl { clone-id, generation, child-index, fork-result,
 *                       fork-first-id = <u64>; }; };
 *   };
 *
 * Cells are big-endian, as FDT has them. The KVM structs are byte strings in
 * the host's (x86-64, little-endian) layout; each must have exactly its
 * struct's size, so a blob from another layout is refused.
 */
#ifndef STATE_STATEFILE_H
#define STATE_STATEFILE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/vm_snapshot.h"

#define STATEFILE_FORMAT 1
#define STATEFILE_MAX_CPUID 256

struct snap_meta {
	uint64_t mem_size;
	uint32_t ncpus;
	uint64_t created_unix;
	char source[64];
	uint64_t mem_file_size;
	bool is_diff;
	uint64_t base_id;    /* a diff: its base's id */
	uint64_t id;
};

/* Build the blob (malloc'd) for snap; meta->ncpus and mem_size are taken from snap. */
int snapfile_build(const struct vm_snapshot *snap, const struct snap_meta *meta,
		   const struct kvm_cpuid2 *cpuid, void **blob, size_t *len);
/*
 * Check everything and read it back: structure (fdt_check_full), format,
 * checksum, every node and property with its exact size, counts and ranges.
 * -EBADMSG (with a message saying what) for anything wrong; nothing leaks.
 */
int snapfile_parse(const void *blob, size_t len, struct vm_snapshot *snap,
		   struct snap_meta *meta, struct kvm_cpuid2 **cpuid);

#endif
