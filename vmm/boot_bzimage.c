/*
 * bzImage loading (Documentation/arch/x86/boot.rst). Rather than running
 * the kernel's own decompressor in the guest (slow when CPL0 code is
 * emulated), the compressed vmlinux in the payload is decompressed here and
 * loaded as an ELF at its physical addresses; the 64-bit entry of that
 * vmlinux is the one boot.rst describes for 64-bit boot loaders.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* The UAPI names its e820 entry like ours; keep its name out of the way. */
#define boot_e820_entry linux_boot_e820_entry
#include <asm/bootparam.h>
#undef boot_e820_entry

#include "core/layout.h"
#include "core/log.h"
#include "vmm/boot.h"

#define HDR_OFFSET      0x1f1
#define HDR_AREA_END    0x290      /* boot_params' room for the header */
#define HDR_JUMP_LEN    0x201      /* the jump's offset byte; header ends at 0x202 + it */
#define HDR_MAGIC_OFF   0x202
#define HDR_MAGIC       "HdrS"
#define HDR_MIN_END     0x264      /* through init_size, present since protocol 2.10 */
#define HDR_MIN_VERSION 0x020c     /* 2.12: xloadflags and the payload fields */
#define SECTOR          512
#define PAYLOAD_MAX     (512 * MiB) /* cap on the decompressed vmlinux */
#define XZ_MEMLIMIT     (256 * MiB) /* cap on the decoder's dictionary */

enum payload_kind { PAYLOAD_GZIP, PAYLOAD_XZ, PAYLOAD_LZMA, PAYLOAD_ZSTD, PAYLOAD_ELF };

struct payload {
	const uint8_t *data;
	size_t len;
	enum payload_kind kind;
	size_t out_len;    /* decompressed size, from the trailer */
};

/*
 * Copy out the setup header; fields the image does not have read as zero.
 * *hdr_len counts the header's bytes up to boot_params' limit, which may be
 * more than this build's struct setup_header knows about.
 */
static int bz_read_header(const uint8_t *image, size_t size, struct setup_header *hdr,
			  size_t *hdr_len)
{
	size_t end, known;

	if (size < HDR_MAGIC_OFF + 4 || memcmp(image + HDR_MAGIC_OFF, HDR_MAGIC, 4) != 0) {
		pr_err("kernel: neither an ELF nor a bzImage (no HdrS magic at 0x202)");
		return -ENOEXEC;
	}
	end = HDR_MAGIC_OFF + image[HDR_JUMP_LEN];
	if (end < HDR_MIN_END || end > size) {
		pr_err("kernel: bzImage setup header is truncated");
		return -ENOEXEC;
	}
	if (end > HDR_AREA_END)
		end = HDR_AREA_END;
	*hdr_len = end - HDR_OFFSET;
	known = *hdr_len < sizeof(*hdr) ? *hdr_len : sizeof(*hdr);
	memset(hdr, 0, sizeof(*hdr));
	memcpy(hdr, image + HDR_OFFSET, known);
	return 0;
}

static int bz_check_header(const struct setup_header *hdr)
{
	if (hdr->version < HDR_MIN_VERSION) {
		pr_err("kernel: bzImage boot protocol %u.%02u is older than 2.12",
		       hdr->version >> 8, hdr->version & 0xff);
		return -ENOEXEC;
	}
	if (!(hdr->xloadflags & XLF_KERNEL_64)) {
		pr_err("kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
		return -ENOEXEC;
	}
	return 0;
}

static int bz_payload_kind(const uint8_t *p, size_t len, enum payload_kind *kind)
{
	static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0 };
	static const uint8_t zstd[] = { 0x28, 0xb5, 0x2f, 0xfd };

	if (len >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)
		*kind = PAYLOAD_GZIP;
	else if (len >= sizeof(xz) && !memcmp(p, xz, sizeof(xz)))
		*kind = PAYLOAD_XZ;
	else if (len >= sizeof(zstd) && !memcmp(p, zstd, sizeof(zstd)))
		*kind = PAYLOAD_ZSTD;
	else if (len >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		*kind = PAYLOAD_LZMA;
	else if (len >= SELFMAG && !memcmp(p, ELFMAG, SELFMAG))
		*kind = PAYLOAD_ELF;
	else {
		pr_err("kernel: bzImage payload compression not supported "
		       "(magic %02x %02x %02x %02x; want gzip, xz, lzma, zstd)",
		       len > 0 ? p[0] : 0, len > 1 ? p[1] : 0, len > 2 ? p[2] : 0,
		       len > 3 ? p[3] : 0);
		return -ENOEXEC;
	}
	return 0;
}

/* Locate the payload inside the protected-mode part and learn its output size. */
static int bz_find_payload(const uint8_t *image, size_t size, const struct setup_header *hdr,
			   struct payload *pl)
{
	uint64_t setup = ((uint64_t)(hdr->setup_sects ? hdr->setup_sects : 4) + 1) * SECTOR;
	uint32_t olen;

	/* All three terms are below 2^33, so the sum cannot overflow. */
	if (hdr->payload_length < 8 || setup + hdr->payload_offset + hdr->payload_length > size) {
		pr_err("kernel: bzImage payload [%#x, +%#x) lies outside the image",
		       hdr->payload_offset, hdr->payload_length);
		return -ENOEXEC;
	}
	pl->data = image + setup + hdr->payload_offset;
	pl->len = hdr->payload_length;
	if (bz_payload_kind(pl->data, pl->len, &pl->kind) < 0)
		return -ENOEXEC;
	if (pl->kind == PAYLOAD_ELF) {
		pl->out_len = pl->len;
		return 0;
	}
	/* The build appends the vmlinux size (gzip's ISIZE is the same thing). */
	memcpy(&olen, pl->data + pl->len - 4, 4);
	olen = le32toh(olen);
	if (olen == 0 || olen > PAYLOAD_MAX) {
		pr_err("kernel: bzImage payload claims %u decompressed bytes", olen);
		return -ENOEXEC;
	}
	pl->out_len = olen;
	return 0;
}

static int bz_gunzip(const struct payload *pl, uint8_t *out)
{
	z_stream s = { 0 };
	int ret;

	if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)pl->data;
	s.avail_in = (uInt)pl->len;
	s.next_out = out;
	s.avail_out = (uInt)pl->out_len;
	ret = inflate(&s, Z_FINISH);
	inflateEnd(&s);
	if (ret != Z_STREAM_END || s.total_out != pl->out_len) {
		pr_err("kernel: gzip payload is corrupt (zlib: %s)", s.msg ? s.msg : "size mismatch");
		return -ENOEXEC;
	}
	return 0;
}

/* xz (.xz container, usually with the x86 BCJ filter) and raw lzma share liblzma. */
static int bz_unlzma(const struct payload *pl, uint8_t *out)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret;

	if (pl->kind == PAYLOAD_XZ)
		ret = lzma_stream_decoder(&s, XZ_MEMLIMIT, 0);
	else
		ret = lzma_alone_decoder(&s, XZ_MEMLIMIT);
	if (ret != LZMA_OK)
		return -ENOMEM;
	s.next_in = pl->data;
	s.avail_in = pl->len;
	s.next_out = out;
	s.avail_out = pl->out_len;
	/* Without LZMA_CONCATENATED the decoder stops at the stream's end: the size trailer is ignored. */
	ret = lzma_code(&s, LZMA_FINISH);
	lzma_end(&s);
	if (ret != LZMA_STREAM_END || s.total_out != pl->out_len) {
		pr_err("kernel: %s payload is corrupt (liblzma error %d)",
		       pl->kind == PAYLOAD_XZ ? "xz" : "lzma", (int)ret);
		return -ENOEXEC;
	}
	return 0;
}

static int bz_unzstd(const struct payload *pl, uint8_t *out)
{
	size_t frame = ZSTD_findFrameCompressedSize(pl->data, pl->len);
	size_t n;

	if (ZSTD_isError(frame)) {
		pr_err("kernel: zstd payload is corrupt: %s", ZSTD_getErrorName(frame));
		return -ENOEXEC;
	}
	n = ZSTD_decompress(out, pl->out_len, pl->data, frame);
	if (ZSTD_isError(n) || n != pl->out_len) {
		pr_err("kernel: zstd payload is corrupt: %s",
		       ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
		return -ENOEXEC;
	}
	return 0;
}

static int bz_decompress(const struct payload *pl, uint8_t **out)
{
	uint8_t *buf = malloc(pl->out_len);
	int ret;

	if (!buf)
		return -ENOMEM;
	switch (pl->kind) {
	case PAYLOAD_GZIP:
		ret = bz_gunzip(pl, buf);
		break;
	case PAYLOAD_XZ:
	case PAYLOAD_LZMA:
		ret = bz_unlzma(pl, buf);
		break;
	case PAYLOAD_ZSTD:
		ret = bz_unzstd(pl, buf);
		break;
	default:
		memcpy(buf, pl->data, pl->len);
		ret = 0;
	}
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

/* Keep what boot_write_params needs from the header: the header itself and the initrd limit. */
static void bz_fill_image(struct boot_image *bi, const uint8_t *image, size_t hdr_len,
			  const struct setup_header *hdr)
{
	uint64_t init_end;

	bi->kind = BOOT_IMAGE_BZIMAGE;
	memcpy(bi->setup_header, image + HDR_OFFSET, hdr_len);
	bi->setup_header_len = hdr_len;
	bi->initrd_addr_max = (uint64_t)hdr->initrd_addr_max + 1;
	/* The kernel counts on init_size bytes from its start; keep an initrd out of them. */
	init_end = bi->load_start + hdr->init_size;
	if (init_end > bi->load_end)
		bi->load_end = init_end;
}

int boot_load_bzimage(const struct guest_mem *mem, const uint8_t *image, size_t size,
		      struct boot_image *out)
{
	struct setup_header hdr;
	struct boot_image bi;
	struct payload pl;
	uint8_t *elf;
	size_t hdr_len;
	int ret;

	_Static_assert(HDR_AREA_END - HDR_OFFSET == sizeof(bi.setup_header), "header area size");
	ret = bz_read_header(image, size, &hdr, &hdr_len);
	if (ret < 0)
		return ret;
	ret = bz_check_header(&hdr);
	if (ret < 0)
		return ret;
	ret = bz_find_payload(image, size, &hdr, &pl);
	if (ret < 0)
		return ret;
	ret = bz_decompress(&pl, &elf);
	if (ret < 0)
		return ret;
	ret = boot_load_elf(mem, elf, pl.out_len, &bi);
	free(elf);
	if (ret < 0)
		return ret;
	bz_fill_image(&bi, image, hdr_len, &hdr);
	*out = bi;
	return 0;
}
