/*
 * The zero page (struct boot_params) of the Linux x86 boot protocol, the
 * e820 map in it, the command line, the initrd, and reading image files.
 * Field meanings follow Documentation/arch/x86/boot.rst and zero-page.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The UAPI names its e820 entry like ours; keep its name out of the way. */
#define boot_e820_entry linux_boot_e820_entry
#include <asm/bootparam.h>
#undef boot_e820_entry

#include "core/layout.h"
#include "core/log.h"
#include "vmm/boot.h"

#define HDR_OFFSET       0x1f1
#define HDR_BOOT_FLAG    0xaa55
#define HDR_MAGIC        0x53726448 /* "HdrS" */
#define LOADER_UNDEFINED 0xff       /* type_of_loader for a loader without an assigned id */

_Static_assert(sizeof(struct boot_params) == PAGE_SIZE, "boot_params is one page");
_Static_assert(sizeof(struct boot_e820_entry) == sizeof(struct linux_boot_e820_entry),
	       "e820 entry layout differs from the zero page's");

static int e820_add(struct boot_e820_entry *out, int max, int n, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end <= addr)
		return n;
	if (n >= max)
		return -E2BIG;
	out[n] = (struct boot_e820_entry){ .addr = addr, .size = end - addr, .type = type };
	return n + 1;
}

/* Low RAM keeps the legacy hole [EBDA, 1 MiB) reserved, where the MP table lives. */
static int e820_add_low(struct boot_e820_entry *out, int max, int n, uint64_t end)
{
	n = e820_add(out, max, n, 0, end < LAYOUT_EBDA ? end : LAYOUT_EBDA, E820_RAM);
	if (n >= 0)
		n = e820_add(out, max, n, LAYOUT_EBDA, LAYOUT_HIMEM, E820_RESERVED);
	if (n >= 0)
		n = e820_add(out, max, n, LAYOUT_HIMEM, end, E820_RAM);
	return n;
}

int boot_build_e820(const struct guest_mem *mem, struct boot_e820_entry *out, int max)
{
	int n = 0;

	for (unsigned i = 0; i < mem->nregions && n >= 0; i++) {
		const struct mem_region *r = &mem->regions[i];

		if (r->gpa == 0)
			n = e820_add_low(out, max, n, r->size);
		else
			n = e820_add(out, max, n, r->gpa, r->gpa + r->size, E820_RAM);
	}
	if (n < 0)
		pr_err("e820: more than %d entries", max);
	return n;
}

static int params_put_cmdline(const struct guest_mem *mem, struct boot_params *bp,
			      const char *cmdline)
{
	size_t len = strlen(cmdline);
	uint64_t max = LAYOUT_CMDLINE_MAX - 1;

	/* A bzImage says how long a command line it accepts (protocol >= 2.06). */
	if (bp->hdr.cmdline_size && bp->hdr.cmdline_size < max)
		max = bp->hdr.cmdline_size;
	if (len > max) {
		pr_err("kernel command line is %zu bytes; this kernel takes at most %llu",
		       len, (unsigned long long)max);
		return -E2BIG;
	}
	if (guest_write(mem, LAYOUT_CMDLINE, cmdline, len + 1) < 0)
		return -EFAULT;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	return 0;
}

static int params_put_initrd(const struct guest_mem *mem, struct boot_params *bp,
			     uint64_t addr, uint64_t size)
{
	if (size == 0)
		addr = 0;  /* none: also clear whatever the image's header said */
	else if (!gpa_ptr(mem, addr, size)) {
		pr_err("initrd [%#llx, +%#llx) is not in guest RAM",
		       (unsigned long long)addr, (unsigned long long)size);
		return -EINVAL;
	}
	bp->hdr.ramdisk_image = (uint32_t)addr;
	bp->hdr.ramdisk_size = (uint32_t)size;
	bp->ext_ramdisk_image = (uint32_t)(addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(size >> 32);
	return 0;
}

/* A bzImage's own header, or for an ELF the few fields a header-less kernel is given. */
static int params_put_header(const struct boot_image *kernel, struct boot_params *bp)
{
	_Static_assert(offsetof(struct boot_params, hdr) == HDR_OFFSET, "setup header offset");
	if (kernel->setup_header_len > sizeof(kernel->setup_header)) {
		pr_err("boot: setup header of %zu bytes is too long", kernel->setup_header_len);
		return -EINVAL;
	}
	/* Raw bytes: a newer kernel's header may run past this build's struct setup_header. */
	memcpy((uint8_t *)bp + HDR_OFFSET, kernel->setup_header, kernel->setup_header_len);
	if (kernel->kind == BOOT_IMAGE_ELF) {
		bp->hdr.boot_flag = HDR_BOOT_FLAG;
		bp->hdr.header = HDR_MAGIC;
		bp->hdr.cmdline_size = LAYOUT_CMDLINE_MAX - 1;
	}
	bp->hdr.type_of_loader = LOADER_UNDEFINED;
	/* The kernel is above 1 MiB; KASLR_FLAG is the kernel's to set, not ours. */
	bp->hdr.loadflags = (bp->hdr.loadflags | LOADED_HIGH) & ~KASLR_FLAG;
	bp->hdr.setup_data = 0;  /* we pass no setup_data list */
	return 0;
}

static int params_put_e820(const struct guest_mem *mem, struct boot_params *bp)
{
	struct boot_e820_entry map[BOOT_E820_MAX];
	int n = boot_build_e820(mem, map, BOOT_E820_MAX);

	if (n < 0)
		return n;
	memcpy(bp->e820_table, map, (size_t)n * sizeof(map[0]));
	bp->e820_entries = (uint8_t)n;
	return 0;
}

int boot_write_params(const struct guest_mem *mem, const struct boot_image *kernel,
		      const char *cmdline, uint64_t initrd_addr, uint64_t initrd_size)
{
	struct boot_params *bp = calloc(1, sizeof(*bp));
	int ret;

	if (!bp)
		return -ENOMEM;
	ret = params_put_header(kernel, bp);
	if (!ret)
		ret = params_put_cmdline(mem, bp, cmdline ? cmdline : "");
	if (!ret)
		ret = params_put_initrd(mem, bp, initrd_addr, initrd_size);
	if (!ret)
		ret = params_put_e820(mem, bp);
	if (!ret)
		ret = guest_write(mem, LAYOUT_ZERO_PAGE, bp, sizeof(*bp));
	free(bp);
	return ret;
}

int boot_set_acpi_rsdp(const struct guest_mem *mem, uint64_t rsdp)
{
	return guest_write(mem, LAYOUT_ZERO_PAGE + offsetof(struct boot_params, acpi_rsdp_addr),
			   &rsdp, sizeof(rsdp));
}

int boot_load_initrd(const struct guest_mem *mem, const struct boot_image *kernel,
		     const uint8_t *data, size_t size, uint64_t *addr)
{
	uint64_t limit = guest_mem_low_end(mem);
	uint64_t lower = kernel->load_end > LAYOUT_KERNEL_MIN ? kernel->load_end : LAYOUT_KERNEL_MIN;
	uint64_t at;

	if (kernel->initrd_addr_max && kernel->initrd_addr_max < limit)
		limit = kernel->initrd_addr_max;
	if (limit > LAYOUT_MMIO_HOLE_END)
		limit = LAYOUT_MMIO_HOLE_END;
	lower = (lower + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	if (size == 0 || lower < kernel->load_end || lower >= limit || size > limit - lower) {
		pr_err("initrd of %zu bytes does not fit between the kernel's end %#llx and %#llx",
		       size, (unsigned long long)kernel->load_end, (unsigned long long)limit);
		return size == 0 ? -EINVAL : -ENOMEM;
	}
	at = (limit - size) & ~(PAGE_SIZE - 1);
	if (at < lower || guest_write(mem, at, data, size) < 0) {
		pr_err("initrd of %zu bytes does not fit above %#llx", size,
		       (unsigned long long)lower);
		return -ENOMEM;
	}
	*addr = at;
	return 0;
}

static int read_all(int fd, uint8_t *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = read(fd, buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;  /* the file shrank under us */
		done += (size_t)n;
	}
	return 0;
}

static int read_open_file(int fd, const char *path, size_t max_size, uint8_t **data,
			  size_t *size)
{
	struct stat st;
	uint8_t *buf;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s: not a regular file", path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max_size) {
		pr_err("%s: %lld bytes is more than the %zu allowed", path,
		       (long long)st.st_size, max_size);
		return -EFBIG;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf)
		return -ENOMEM;
	ret = read_all(fd, buf, (size_t)st.st_size);
	if (ret < 0) {
		pr_err("%s: read failed: %s", path, strerror(-ret));
		free(buf);
		return ret;
	}
	*data = buf;
	*size = (size_t)st.st_size;
	return 0;
}

int boot_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0) {
		ret = -errno;
		pr_err("%s: %s", path, strerror(errno));
		return ret;
	}
	ret = read_open_file(fd, path, max_size, data, size);
	close(fd);
	return ret;
}
