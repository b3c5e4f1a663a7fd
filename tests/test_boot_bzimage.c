/* bzImage loading: synthetic images with each compression, broken ones, and the host's kernel. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <glob.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "core/layout.h"
#include "vmm/boot.h"

#define BZ_SETUP_SECTS 3
#define BZ_PM_START    ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_OFF 0x240   /* >= 512 so setup_sects 0 (4) can reach it too */
#define BZ_TEXT_GPA    0x1000000ULL
#define BZ_TEXT_SIZE   0x6000

struct bz_buf {
	uint8_t *data;
	size_t size;
};

static struct guest_mem bz_mem;

static void bz_setup(void)
{
	cr_assert_eq(guest_mem_create(&bz_mem, 64 * MiB, NULL), 0);
}

static void bz_teardown(void)
{
	guest_mem_destroy(&bz_mem);
}

static void bz_put(uint8_t *p, size_t off, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

/* A vmlinux-like ELF: one executable segment at 16 MiB with a recognisable pattern. */
static struct bz_buf bz_make_elf(void)
{
	struct bz_buf e = { .size = 0x1000 + BZ_TEXT_SIZE };
	Elf64_Ehdr eh = {
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = BZ_TEXT_GPA + 0x200, .e_phoff = sizeof(eh), .e_ehsize = sizeof(eh),
		.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1,
	};
	Elf64_Phdr ph = {
		.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x1000,
		.p_vaddr = 0xffffffff81000000ULL, .p_paddr = BZ_TEXT_GPA,
		.p_filesz = BZ_TEXT_SIZE, .p_memsz = BZ_TEXT_SIZE + 0x2000,
	};

	e.data = calloc(1, e.size);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(e.data, &eh, sizeof(eh));
	memcpy(e.data + sizeof(eh), &ph, sizeof(ph));
	for (size_t i = 0; i < BZ_TEXT_SIZE; i++)
		e.data[0x1000 + i] = (uint8_t)(i * 7 + (i >> 9));
	return e;
}

/* Room for the compressed data plus the 4-byte size the kernel build appends. */
static struct bz_buf bz_alloc_out(size_t in)
{
	return (struct bz_buf){ .data = malloc(in + 1024), .size = in + 1024 };
}

static void bz_append_size(struct bz_buf *c, size_t pos, size_t orig)
{
	bz_put(c->data, pos, orig, 4);
	c->size = pos + 4;
}

static struct bz_buf bz_gzip(const struct bz_buf *in)
{
	struct bz_buf c = bz_alloc_out(in->size);
	z_stream s = { 0 };

	cr_assert_eq(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	s.next_in = in->data;
	s.avail_in = (uInt)in->size;
	s.next_out = c.data;
	s.avail_out = (uInt)c.size;
	cr_assert_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
	c.size = s.total_out;     /* gzip's own trailer already ends in the size */
	deflateEnd(&s);
	return c;
}

/* xz with the x86 BCJ filter and CRC32, the way the kernel build makes it. */
static struct bz_buf bz_xz(const struct bz_buf *in)
{
	struct bz_buf c = bz_alloc_out(in->size);
	lzma_options_lzma opt;
	lzma_filter filters[] = {
		{ .id = LZMA_FILTER_X86 }, { .id = LZMA_FILTER_LZMA2, .options = &opt },
		{ .id = LZMA_VLI_UNKNOWN },
	};
	size_t pos = 0;

	cr_assert(!lzma_lzma_preset(&opt, 6));
	cr_assert_eq(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in->data,
					       in->size, c.data, &pos, c.size - 4), LZMA_OK);
	bz_append_size(&c, pos, in->size);
	return c;
}

static struct bz_buf bz_lzma_alone(const struct bz_buf *in)
{
	struct bz_buf c = bz_alloc_out(in->size);
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;

	cr_assert(!lzma_lzma_preset(&opt, 6));
	cr_assert_eq(lzma_alone_encoder(&s, &opt), LZMA_OK);
	s.next_in = in->data;
	s.avail_in = in->size;
	s.next_out = c.data;
	s.avail_out = c.size - 4;
	cr_assert_eq(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	bz_append_size(&c, s.total_out, in->size);
	lzma_end(&s);
	return c;
}

/* With a content checksum, as the zstd tool the kernel build runs writes by default. */
static struct bz_buf bz_zstd(const struct bz_buf *in)
{
	struct bz_buf c = bz_alloc_out(in->size);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t n;

	cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)));
	cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 19)));
	n = ZSTD_compress2(cctx, c.data, c.size - 4, in->data, in->size);
	cr_assert(!ZSTD_isError(n));
	ZSTD_freeCCtx(cctx);
	bz_append_size(&c, n, in->size);
	return c;
}

/* A bzImage around payload: boot protocol 2.15, 64-bit entry, payload at BZ_PAYLOAD_OFF. */
static struct bz_buf bz_wrap(const struct bz_buf *payload)
{
	struct bz_buf b = { .size = BZ_PM_START + BZ_PAYLOAD_OFF + payload->size + 0x20 };
	uint8_t *p = b.data = calloc(1, b.size);

	p[0x1f1] = BZ_SETUP_SECTS;
	bz_put(p, 0x1fe, 0xaa55, 2);
	p[0x200] = 0xeb;
	p[0x201] = 0x6a;                            /* header ends at 0x26c */
	memcpy(p + 0x202, "HdrS", 4);
	bz_put(p, 0x206, 0x020f, 2);                /* version */
	p[0x211] = 1;                               /* LOADED_HIGH */
	bz_put(p, 0x22c, 0x37ffffff, 4);            /* initrd_addr_max */
	bz_put(p, 0x230, 0x200000, 4);              /* kernel_alignment */
	bz_put(p, 0x236, 0x3, 2);                   /* XLF_KERNEL_64 | above 4G */
	bz_put(p, 0x238, 0x7ff, 4);                 /* cmdline_size */
	bz_put(p, 0x248, BZ_PAYLOAD_OFF, 4);
	bz_put(p, 0x24c, payload->size, 4);
	bz_put(p, 0x258, BZ_TEXT_GPA, 8);           /* pref_address */
	bz_put(p, 0x260, 0x20000, 4);               /* init_size */
	memcpy(p + BZ_PM_START + BZ_PAYLOAD_OFF, payload->data, payload->size);
	return b;
}

static struct bz_buf bz_image(struct bz_buf (*compress)(const struct bz_buf *))
{
	struct bz_buf elf = bz_make_elf(), c = compress(&elf), img = bz_wrap(&c);

	free(elf.data);
	free(c.data);
	return img;
}

static void bz_check_loaded(const struct boot_image *bi)
{
	const uint8_t *text = gpa_ptr(&bz_mem, BZ_TEXT_GPA, BZ_TEXT_SIZE);

	cr_assert_eq(bi->kind, BOOT_IMAGE_BZIMAGE);
	cr_assert_eq(bi->entry, BZ_TEXT_GPA + 0x200);
	cr_assert_eq(bi->load_start, BZ_TEXT_GPA);
	cr_assert_eq(bi->load_end, BZ_TEXT_GPA + 0x20000, "init_size not reserved");
	cr_assert_eq(bi->initrd_addr_max, 0x38000000);
	cr_assert_eq(bi->setup_header_len, 0x26c - 0x1f1);
	cr_assert(!memcmp(bi->setup_header + (0x202 - 0x1f1), "HdrS", 4));
	for (size_t i = 0; i < BZ_TEXT_SIZE; i++)
		cr_assert_eq(text[i], (uint8_t)(i * 7 + (i >> 9)), "byte %#zx", i);
}

static void bz_expect_ok(struct bz_buf (*compress)(const struct bz_buf *))
{
	struct bz_buf img = bz_image(compress);
	struct boot_image bi;

	cr_assert_eq(boot_load_kernel(&bz_mem, img.data, img.size, &bi), 0);
	bz_check_loaded(&bi);
	free(img.data);
}

static void bz_expect_reject(struct bz_buf *img, int err)
{
	struct boot_image bi = { .entry = 0x4321 };

	cr_assert_eq(boot_load_kernel(&bz_mem, img->data, img->size, &bi), err);
	cr_assert_eq(bi.entry, 0x4321);
	free(img->data);
}

TestSuite(boot_bzimage, .init = bz_setup, .fini = bz_teardown);

Test(boot_bzimage, loads_gzip) { bz_expect_ok(bz_gzip); }
Test(boot_bzimage, loads_xz_bcj) { bz_expect_ok(bz_xz); }
Test(boot_bzimage, loads_lzma) { bz_expect_ok(bz_lzma_alone); }
Test(boot_bzimage, loads_zstd) { bz_expect_ok(bz_zstd); }

Test(boot_bzimage, setup_sects_zero_means_four)
{
	struct bz_buf img = bz_image(bz_xz);
	struct boot_image bi;

	/* With setup_sects 0 the payload is found one sector further on. */
	img.data[0x1f1] = 0;
	bz_put(img.data, 0x248, BZ_PAYLOAD_OFF - 512, 4);
	cr_assert_eq(boot_load_bzimage(&bz_mem, img.data, img.size, &bi), 0);
	bz_check_loaded(&bi);
	free(img.data);
}

Test(boot_bzimage, rejects_bad_header)
{
	struct bz_buf img;

	img = bz_image(bz_gzip);
	memcpy(img.data + 0x202, "HdrZ", 4);
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_gzip);
	bz_put(img.data, 0x206, 0x020b, 2);         /* 2.11: no payload fields */
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_gzip);
	bz_put(img.data, 0x236, 0x2, 2);            /* no XLF_KERNEL_64 */
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_gzip);
	img.data[0x201] = 0x30;                     /* header too short for init_size */
	bz_expect_reject(&img, -ENOEXEC);
}

Test(boot_bzimage, rejects_payload_out_of_range)
{
	struct bz_buf img;

	img = bz_image(bz_xz);
	bz_put(img.data, 0x248, 0xfffffff0, 4);
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_xz);
	bz_put(img.data, 0x24c, 0xffffffff, 4);
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_xz);
	img.data[0x1f1] = 0xff;                     /* setup larger than the file */
	bz_expect_reject(&img, -ENOEXEC);
}

Test(boot_bzimage, rejects_corrupt_payload)
{
	struct bz_buf img;
	size_t mid = BZ_PM_START + BZ_PAYLOAD_OFF + 0x80;

	img = bz_image(bz_xz);
	img.data[mid] ^= 0x55;
	img.data[mid + 1] ^= 0xaa;
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_gzip);
	img.data[mid] ^= 0x55;
	img.data[mid + 1] ^= 0xaa;
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_zstd);
	img.data[mid] ^= 0x55;
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_xz);                      /* unsupported method (bzip2) */
	memcpy(img.data + BZ_PM_START + BZ_PAYLOAD_OFF, "BZh9", 4);
	bz_expect_reject(&img, -ENOEXEC);
}

Test(boot_bzimage, rejects_wrong_size_trailer)
{
	struct bz_buf img;
	size_t end;

	img = bz_image(bz_xz);
	end = BZ_PM_START + BZ_PAYLOAD_OFF + (img.data[0x24c] | img.data[0x24d] << 8);
	bz_put(img.data, end - 4, 0x100, 4);        /* output would not fit */
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_zstd);
	end = BZ_PM_START + BZ_PAYLOAD_OFF + (img.data[0x24c] | img.data[0x24d] << 8);
	bz_put(img.data, end - 4, 0xffffffff, 4);   /* beyond the 512 MiB cap */
	bz_expect_reject(&img, -ENOEXEC);
}

Test(boot_bzimage, rejects_truncated_image)
{
	struct bz_buf img;

	img = bz_image(bz_xz);
	img.size = BZ_PM_START + BZ_PAYLOAD_OFF + 0x100;
	bz_expect_reject(&img, -ENOEXEC);
	img = bz_image(bz_xz);
	img.size = 0x220;
	bz_expect_reject(&img, -ENOEXEC);
}

/* The payload is fine but the vmlinux in it does not fit the guest's RAM. */
Test(boot_bzimage, rejects_payload_elf_outside_ram)
{
	struct bz_buf elf = bz_make_elf(), c, img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(elf.data + sizeof(Elf64_Ehdr));

	ph->p_paddr = 64 * MiB - 0x1000;     /* memsz 0x8000 runs past the end */
	c = bz_gzip(&elf);
	img = bz_wrap(&c);
	free(elf.data);
	free(c.data);
	bz_expect_reject(&img, -ENOMEM);
}

Test(boot_bzimage, loads_host_kernel)
{
	struct guest_mem big;
	struct boot_image bi;
	glob_t g;
	uint8_t *img;
	size_t size;
	uint64_t pref;

	if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0) {
		cr_skip("no /boot/vmlinuz-* on this host to load");
		return;
	}
	cr_assert_eq(boot_read_file(g.gl_pathv[0], 256 * MiB, &img, &size), 0, "%s",
		     g.gl_pathv[0]);
	cr_log_info("loading %s", g.gl_pathv[0]);
	globfree(&g);
	cr_assert_eq(guest_mem_create(&big, 512 * MiB, NULL), 0);
	cr_assert_eq(boot_load_kernel(&big, img, size, &bi), 0);
	memcpy(&pref, img + 0x258, sizeof(pref));
	cr_assert_eq(bi.kind, BOOT_IMAGE_BZIMAGE);
	/* The vmlinux is linked at its preferred address and enters at its start. */
	cr_assert_eq(bi.entry, pref, "entry %#llx", (unsigned long long)bi.entry);
	cr_assert_eq(bi.load_start, pref);
	cr_assert_gt(bi.load_end, bi.load_start + 16 * MiB);
	cr_assert_eq(bi.entry & (2 * MiB - 1), 0);
	cr_assert(!memcmp(bi.setup_header + (0x202 - 0x1f1), "HdrS", 4));
	cr_assert_neq(*(uint64_t *)gpa_ptr(&big, bi.entry, 8), 0, "no code at the entry");
	guest_mem_destroy(&big);
	free(img);
}
