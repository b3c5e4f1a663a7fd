# vm-fork: one non-recursive Makefile for the VMM library, the CLI, the guests and the tests.
CC      ?= gcc
BUILD   ?= build
Q       ?= @

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wmissing-prototypes \
           -D_GNU_SOURCE -pthread -I. -MMD -MP
LDLIBS  += -lfdt -llzma -lz -lzstd -lmicrohttpd -ljansson -lcurl -lseccomp -pthread

LIB_SRCS  := $(sort $(wildcard core/*.c devices/*.c vmm/*.c state/*.c fork/*.c server/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libvmm.a
TOOL      := $(BUILD)/vm-fork
TEST_SRCS := $(sort $(wildcard tests/*.c))
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN  := $(BUILD)/tests/vm-fork-tests

# Guests: a freestanding runtime in guest/rt and one test guest per guest/*.c.
GUEST_CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -ffreestanding -fno-pic -fno-pie \
                 -fno-stack-protector -fno-asynchronous-unwind-tables -mno-red-zone \
                 -mcmodel=small -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
                 -I. -Iguest/rt -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,guest/rt/guest.ld
GUEST_RT_SRCS := $(sort $(wildcard guest/rt/*.c guest/rt/*.S))
GUEST_RT_OBJS := $(patsubst %,$(BUILD)/%.o,$(basename $(GUEST_RT_SRCS)))
GUEST_NAMES   := $(basename $(notdir $(wildcard guest/*.c)))
GUESTS        := $(GUEST_NAMES:%=$(BUILD)/guest/%.elf)

.PHONY: all deps demo test test-fast bench bench-serve guest-kernel check clean
# Keep the guest runtime objects: every guest links them.
.SECONDARY: $(GUEST_RT_OBJS) $(GUESTS:.elf=.o)
INITRAMFS := $(BUILD)/linux/initramfs.cpio.gz
GUEST_KERNEL := $(BUILD)/linux/guest-bzImage
# Static programs for the Linux test guests' initramfs (guest/linux/*.c).
LINUX_PROGS := $(patsubst guest/linux/%.c,$(BUILD)/linux/%,$(wildcard guest/linux/*.c))
# The example function of `vm-fork serve` (examples/fn-words): its initramfs.
FN_EXAMPLE := $(BUILD)/examples/fn-words.cpio.gz
# vm-fork fuzz's example as a program in a Linux guest (docs/fuzzing.md).
FUZZ_LINUX := $(BUILD)/examples/fuzz-linux.cpio.gz
# A boot sector SeaBIOS loads from a disk (guest/boot/bootsector.S): 512 bytes at 0x7c00.
BOOT_SECTOR := $(BUILD)/guest/bootsector.bin
all: $(TOOL) $(GUESTS) $(TEST_BIN) $(INITRAMFS) $(LINUX_PROGS) $(FN_EXAMPLE) $(FUZZ_LINUX) \
     $(BOOT_SECTOR)

deps:
	$(Q)tools/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

TOOL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tools/*.c)))
$(TOOL): $(TOOL_OBJS) $(LIB)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/guest/rt/%.o: guest/rt/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@
$(BUILD)/guest/rt/%.o: guest/rt/%.S
	@mkdir -p $(@D)
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@
$(BUILD)/guest/%.o: guest/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(GUEST_CFLAGS) -c $< -o $@
$(BOOT_SECTOR): guest/boot/bootsector.S
	@mkdir -p $(@D)
	$(Q)$(CC) -m32 -c $< -o $(@:.bin=.o)
	$(Q)$(LD) -m elf_i386 -Ttext=0x7c00 --oformat binary -e _start $(@:.bin=.o) -o $@
# Fuzz targets: built with clang's trace-pc-guard coverage (guest/rt/fuzz.c has the callback).
CLANG ?= clang
GUEST_CLANG_CFLAGS := $(filter-out -isystem $(shell $(CC) -print-file-name=include),$(GUEST_CFLAGS)) \
                      -isystem $(shell $(CLANG) -print-resource-dir 2>/dev/null)/include \
                      -fsanitize-coverage=trace-pc-guard
FUZZ_GUESTS := fuzz_target fuzz_classes
$(FUZZ_GUESTS:%=$(BUILD)/guest/%.o): $(BUILD)/guest/%.o: guest/%.c
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(GUEST_CLANG_CFLAGS) -c $< -o $@
# The same target as a program in a Linux guest: built with clang's coverage and
# the helper library (guest/linux/lib, no coverage), in an initramfs of its own.
$(BUILD)/linux/lib/vmfork_fuzz.o: guest/linux/lib/vmfork_fuzz.c guest/linux/lib/vmfork_fuzz.h devices/ctl_abi.h
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -Wall -Wextra -I. -c $< -o $@
# clang compiles (with coverage) but does not link: for -fsanitize-coverage it
# would link a sanitizer runtime whose interceptors a static program never sets up.
$(BUILD)/linux/fuzz-tlv.o: guest/linux/fuzz/fuzz-tlv.c guest/fuzz/tlv.h guest/linux/lib/vmfork_fuzz.h
	@mkdir -p $(@D)
	$(Q)$(CLANG) -O2 -Wall -I. -fsanitize-coverage=trace-pc-guard -c $< -o $@
$(BUILD)/linux/fuzz-tlv: $(BUILD)/linux/fuzz-tlv.o $(BUILD)/linux/lib/vmfork_fuzz.o
	$(Q)$(CC) -static $^ -o $@
$(FUZZ_LINUX): examples/fuzz-linux/init $(BUILD)/linux/fuzz-tlv tools/make-initramfs.sh
	$(Q)tools/make-initramfs.sh $@ examples/fuzz-linux/init $(BUILD)/linux/fuzz-tlv
# The same target as a Linux process under afl-clang-fast, for make bench.
FUZZ_NATIVE := $(BUILD)/fuzz/tlv-native
$(FUZZ_NATIVE): guest/fuzz/native.c guest/fuzz/tlv.h
	@mkdir -p $(@D)
	$(Q)AFL_QUIET=1 afl-clang-fast -O2 $< -o $@
$(BUILD)/guest/%.elf: $(BUILD)/guest/%.o $(GUEST_RT_OBJS) guest/rt/guest.ld
	$(Q)$(CC) $(GUEST_LDFLAGS) $(BUILD)/guest/$*.o $(GUEST_RT_OBJS) -o $@

$(BUILD)/tests/%.o: CFLAGS += -DVMFORK_BUILD_DIR='"$(abspath $(BUILD))"' \
                             -DVMFORK_SRC_DIR='"$(abspath .)"' -Wno-missing-prototypes
$(TEST_BIN): $(TEST_OBJS) $(LIB)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lcriterion -o $@

# The benchmark (make bench): tools/bench/*.c linked with the library.
BENCH_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tools/bench/*.c)))
BENCH      := $(BUILD)/vm-fork-bench
$(BENCH): $(BENCH_OBJS) $(LIB)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lm -o $@

# The serverless pool's load client (make bench-serve): tools/serve_bench/*.c.
SERVE_BENCH_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tools/serve_bench/*.c))) \
		    $(BUILD)/tools/bench/qmp.o
SERVE_BENCH      := $(BUILD)/vm-fork-serve-bench
$(SERVE_BENCH): $(SERVE_BENCH_OBJS) $(LIB)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lm -o $@

# A busybox initramfs for the Linux boot tier (tests/test_linux.c).
$(INITRAMFS): tools/make-initramfs.sh
	$(Q)tools/make-initramfs.sh $@

$(FN_EXAMPLE): examples/fn-words/init $(BUILD)/linux/fn-words tools/make-initramfs.sh
	$(Q)tools/make-initramfs.sh $@ examples/fn-words/init $(BUILD)/linux/fn-words

$(BUILD)/linux/%: guest/linux/%.c guest/linux/vsock_util.h
	@mkdir -p $(@D)
	$(Q)$(CC) -static -O2 -Wall -Wextra $< -o $@

# The small guest kernel (configs/guest-kernel.config), built from Debian's
# linux-source-6.1 once and cached outside the clone (tools/guest-kernel.sh).
$(GUEST_KERNEL): configs/guest-kernel.config tools/guest-kernel.sh
	$(Q)tools/guest-kernel.sh $@ >/dev/null
guest-kernel: $(GUEST_KERNEL)

# The README's commands: both install what they need first.
# Each runs its KVM part where a KVM is: here, or in a QEMU VM (tools/with-kvm.sh).
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/with-kvm.sh tools/demo.sh

test: deps check
	$(Q)$(MAKE) --no-print-directory all $(GUEST_KERNEL)
	$(Q)tools/run-tests.sh $(TEST_BIN)

bench: deps
	$(Q)tools/install-deps.sh configs/bench-packages.txt
	$(Q)$(MAKE) --no-print-directory all $(BENCH) $(GUEST_KERNEL) $(FUZZ_NATIVE)
	$(Q)tools/with-kvm.sh tools/bench/run.sh $(BUILD)

# vm-fork serve under load (tools/serve_bench): SERVE_BENCH_ARGS=--quick for a short run.
bench-serve: deps
	$(Q)$(MAKE) --no-print-directory all $(SERVE_BENCH) $(GUEST_KERNEL)
	$(Q)tools/with-kvm.sh $(abspath $(SERVE_BENCH)) --vmfork $(abspath $(TOOL)) \
		--kernel $(abspath $(GUEST_KERNEL)) --initrd $(abspath $(FN_EXAMPLE)) $(SERVE_BENCH_ARGS)

# Without the slow Linux boot tier.
test-fast: all
	$(Q)tools/run-tests.sh $(TEST_BIN) --filter='!(linux_boot/*)'

# Includes run down the layers only (the layers are listed in the script).
check:
	$(Q)tools/check-layers.sh

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
