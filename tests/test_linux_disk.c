/*
 * virtio-blk seen from Linux (the small kernel, ext4 on an image the test
 * makes with mke2fs -d, no root needed): clones of one template write files
 * of their own and each sees only its own; the image file does not change
 * once the template forked; a snapshot of a clone keeps its writes in a new
 * process; reset-in-place forgets the writes since the mark.
 *
 * A clone knows it is one by the GED's interrupt count in /proc/interrupts:
 * each new VM (a clone, a restored VM) gets a VMGenID event through the GED
 * before it runs. The guest cannot mark or reset itself (the control device
 * is not reachable from Linux userspace without /dev/mem), so the host does
 * both through the API, and compares the disk through snapshots.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/disk_image.h"
#include "tests/harness.h"
#include "tests/linux_harness.h"

#define NCLONES 3

static const char disk_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"mount -t devtmpfs dev /dev 2>/dev/null\n"
	"echo 1 > /proc/sys/kernel/printk; echo 4 > /proc/sys/vm/drop_caches\n" /* a quiet console */
	"ged() { grep Ged /proc/interrupts | awk '{s=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}'; }\n"
	"n=0; while [ ! -b /dev/vda ] && [ $n -lt 30 ]; do sleep 1; n=$((n+1)); done\n"
	"mkdir -p /mnt\n"
	"mount -t ext4 /dev/vda /mnt || echo 'disk: mount failed'\n"
	"echo \"disk: ready $(cat /mnt/hello) serial $(cat /sys/block/vda/serial) end\"\n"
	"sync\n"
	"case \"$(cat /proc/cmdline)\" in *disktest=ticks*) mode=ticks;; *) mode=clones;; esac\n"
	"last=$(ged); i=0\n"
	"while :; do\n"
	"  if [ $mode = ticks ]; then\n"
	"    i=$((i+1)); echo $i > /mnt/tick-$i; sync; echo \"disk: tick $i\"\n"
	"  else\n"
	"    g=$(ged)\n"
	"    if [ \"$g\" != \"$last\" ]; then\n"
	"      last=$g; sleep 1\n" /* VMGenID's reseed lands before the tag is drawn */
	"      tag=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n')\n"
	"      echo $tag > /mnt/clone-$tag; sync\n"
	"      echo \"disk: wrote clone-$tag\"\n"
	"    fi\n"
	"    echo 3 > /proc/sys/vm/drop_caches\n" /* ls reads the directory from the disk */
	"    echo \"disk: files $(ls /mnt | tr '\\n' ' ')end\"\n"
	"  fi\n"
	"  sleep 1\n"
	"done\n";

struct disk_setup {
	char dir[64];     /* everything of the test, removed at the end */
	char img[96];
};

static void make_image(struct disk_setup *d)
{
	char cmd[512];

	snprintf(d->dir, sizeof(d->dir), "/tmp/vmfork-lxdisk-XXXXXX");
	cr_assert_not_null(mkdtemp(d->dir));
	snprintf(d->img, sizeof(d->img), "%s/disk.img", d->dir);
	snprintf(cmd, sizeof(cmd),
		 "mkdir %s/src && echo base > %s/src/hello && "
		 "mke2fs -q -F -t ext4 -d %s/src %s 32M", d->dir, d->dir, d->dir, d->img);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void drop_setup(struct disk_setup *d)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d->dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", d->dir);
}

static uint32_t file_crc(const char *path)
{
	static uint8_t buf[1 << 20];
	uint32_t crc = (uint32_t)crc32(0, NULL, 0);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = (uint32_t)crc32(crc, buf, (uInt)n);
	close(fd);
	return crc;
}

/* The disk a snapshot folder holds: the image with its overlay on top, flattened. */
static uint32_t snapshot_disk_crc(const char *img, const char *snap)
{
	static uint8_t buf[1 << 20];
	struct disk_layer *view;
	struct disk_image *disk;
	uint32_t crc = (uint32_t)crc32(0, NULL, 0);

	cr_assert_eq(disk_layer_import(&view, img, snap, "disk"), 0, "%s: no disk overlay", snap);
	cr_assert_eq(disk_image_from(&disk, view, NULL), 0);
	for (uint64_t off = 0; off < disk_image_size(disk); off += sizeof(buf)) {
		uint64_t n = disk_image_size(disk) - off < sizeof(buf) ? disk_image_size(disk) - off
								       : sizeof(buf);

		cr_assert_eq(disk_image_read(disk, buf, off, n), 0);
		crc = (uint32_t)crc32(crc, buf, (uInt)n);
	}
	disk_image_close(disk);
	disk_layer_put(view);
	return crc;
}

static char *tail(char *out)
{
	return out + (strlen(out) > 3000 ? strlen(out) - 3000 : 0);
}

/* The first "end" that ends a line at or after p (the console writes \r\n), or NULL. */
static const char *line_end(const char *p)
{
	for (; p && (p = strstr(p, "end")); p++)
		if (p[3] == '\r' || p[3] == '\n')
			return p;
	return NULL;
}

static bool has_ready(const char *out)
{
	const char *p = strstr(out, "disk: ready");

	return (p && line_end(p)) || strstr(out, "disk: mount failed");
}

/* A "files" line after the clone's "wrote" line. */
static bool wrote_and_listed(const char *out)
{
	const char *w = strstr(out, "disk: wrote clone-"), *f = w ? strstr(w, "disk: files ") : NULL;

	return f && line_end(f);
}

/* The last whole "disk: files ... end" line after from, into line. */
static void last_files(const char *from, char *line, size_t len)
{
	const char *p = from, *found = NULL, *end;

	while ((p = strstr(p, "disk: files ")) && (end = line_end(p))) {
		found = p;
		p = end;
	}
	cr_assert_not_null(found);
	end = line_end(found);
	snprintf(line, len, "%.*s", (int)(end - found), found);
}

static unsigned count_of(const char *s, const char *what)
{
	unsigned n = 0;

	for (; (s = strstr(s, what)); s++)
		n++;
	return n;
}

/* Clone id wrote clone-TAG and then saw exactly one clone file: its own. */
static void check_clone(struct linux_vm *vm, unsigned id, char *tag, size_t len)
{
	char path[128], line[1024], name[48], *out;

	linux_console_path(vm, id, path, sizeof(path));
	out = linux_wait_for(vm, path, wrote_and_listed, 300);
	cr_assert(wrote_and_listed(out), "clone %u wrote nothing:\n%s", id, tail(out));
	cr_assert_eq(sscanf(strstr(out, "disk: wrote clone-"), "disk: wrote clone-%16[0-9a-f]", tag), 1);
	last_files(strstr(out, "disk: wrote"), line, sizeof(line));
	snprintf(name, sizeof(name), "clone-%s ", tag);
	cr_log_info("clone %u: %s", id, line);
	cr_expect(strstr(line, name), "clone %u does not see its file %s: %s", id, name, line);
	cr_expect(strstr(line, "hello "), "clone %u lost the image's file: %s", id, line);
	cr_expect_eq(count_of(line, "clone-"), 1, "clone %u sees others' files: %s", id, line);
	free(out);
}

/* Boot the template on d's image to its first files line; pause it; fork count clones. */
static void template_forked(struct linux_vm *vm, struct disk_setup *d, const char *cmdline,
			    unsigned count)
{
	const char *extra[] = { "--disk", d->img, NULL };
	char *kernel = linux_small_kernel(), cli[4096], n[16], *out;

	make_image(d);
	linux_start(vm, kernel, disk_init, cmdline, extra);
	out = linux_wait_for(vm, vm->console, has_ready, 240);
	cr_assert(has_ready(out) && !strstr(out, "mount failed"), "no disk in the guest:\n%s",
		  tail(out));
	cr_assert(strstr(out, "disk: ready base serial disk.img end"), "%s",
		  strstr(out, "disk: ready"));
	linux_cli(vm, "pause", cli, sizeof(cli), NULL);
	if (count) {
		snprintf(n, sizeof(n), "%u", count);
		linux_cli(vm, "fork", cli, sizeof(cli), "--count", n, NULL);
	}
	free(out);
	free(kernel);
}

Test(linux_disk, clones_see_only_their_own_files, .timeout = 150)
{
	char tags[NCLONES][17];
	struct disk_setup d;
	struct linux_vm vm;
	uint32_t at_fork;

	template_forked(&vm, &d, NULL, NCLONES);
	at_fork = file_crc(d.img);
	for (unsigned id = 1; id <= NCLONES; id++)
		check_clone(&vm, id, tags[id - 1], sizeof(tags[0]));
	for (unsigned i = 0; i < NCLONES; i++)
		for (unsigned j = i + 1; j < NCLONES; j++)
			cr_expect_str_neq(tags[i], tags[j], "clones %u and %u drew one tag", i + 1, j + 1);
	cr_expect_eq(file_crc(d.img), at_fork, "the image file changed after the fork");
	linux_stop(&vm);
	cr_expect_eq(file_crc(d.img), at_fork, "the image file changed after the fork");
	drop_setup(&d);
}

/* vm-fork restore DIR in a new VMM, its console a file. */
static void restore_start(struct linux_vm *vm, const char *dir)
{
	char console[96];
	int fd;

	memset(vm, 0, sizeof(*vm));
	vm->status = -1;
	strcpy(vm->console, "/tmp/vm-fork-lxr-XXXXXX");
	fd = mkstemp(vm->console);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(vm->api, sizeof(vm->api), "%s.sock", vm->console);
	snprintf(console, sizeof(console), "file:%s", vm->console);
	vm->pid = fork();
	cr_assert(vm->pid >= 0);
	if (vm->pid == 0) {
		const char *bin = harness_build_path("vm-fork");

		execl(bin, bin, "restore", "--console", console, "--api", vm->api, dir, (char *)NULL);
		_exit(127);
	}
}

Test(linux_disk, a_snapshot_keeps_a_clones_writes, .timeout = 150)
{
	char tag[17], tag2[17], snap[128], cli[4096], line[1024], name[48], *out;
	struct disk_setup d;
	struct linux_vm vm, back;
	uint32_t at_fork;

	template_forked(&vm, &d, NULL, 1);
	at_fork = file_crc(d.img);
	check_clone(&vm, 1, tag, sizeof(tag));
	snprintf(snap, sizeof(snap), "%s/snap", d.dir);
	linux_cli(&vm, "snapshot", cli, sizeof(cli), "--id", "1", snap, NULL);
	linux_stop(&vm);
	cr_expect_eq(file_crc(d.img), at_fork);
	/* In a new process: the restored VM is a new one too (a GED event): it writes again. */
	restore_start(&back, snap);
	out = linux_wait_for(&back, back.console, wrote_and_listed, 300);
	cr_assert(wrote_and_listed(out), "the restored VM wrote nothing:\n%s", tail(out));
	cr_assert_eq(sscanf(strstr(out, "disk: wrote clone-"), "disk: wrote clone-%16[0-9a-f]", tag2),
		     1);
	last_files(strstr(out, "disk: wrote"), line, sizeof(line));
	cr_log_info("restored: %s", line);
	snprintf(name, sizeof(name), "clone-%s ", tag);
	cr_expect(strstr(line, name), "the snapshot lost the clone's file %s: %s", name, line);
	snprintf(name, sizeof(name), "clone-%s ", tag2);
	cr_expect(strstr(line, name), "the restored VM's own file %s is missing: %s", name, line);
	cr_expect_eq(count_of(line, "clone-"), 2, "%s", line);
	free(out);
	linux_stop(&back);
	cr_expect_eq(file_crc(d.img), at_fork, "the image file changed");
	drop_setup(&d);
}

static size_t discard(void *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* PUT path on the VMM's API (the reset endpoints have no CLI command). */
static void api_put(const struct linux_vm *vm, const char *path)
{
	CURL *c = curl_easy_init();
	char url[128];
	long code = 0;

	cr_assert_not_null(c);
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, vm->api);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "PUT %s", path);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	cr_assert(code >= 200 && code < 300, "PUT %s: HTTP %ld", path, code);
}

static unsigned last_tick(const char *out)
{
	const char *p = out;
	unsigned n = 0, t;

	while ((p = strstr(p, "disk: tick ")))
		if (sscanf(p++, "disk: tick %u", &t) == 1 && t > n)
			n = t;
	return n;
}

static unsigned want_tick;

static bool reached_tick(const char *out)
{
	return last_tick(out) >= want_tick;
}

static void wait_tick(struct linux_vm *vm, unsigned n)
{
	char *out;

	want_tick = n;
	out = linux_wait_for(vm, vm->console, reached_tick, 240);
	cr_assert_geq(last_tick(out), n, "no tick %u:\n%s", n, tail(out));
	free(out);
}

static void snapshot_to(struct linux_vm *vm, const struct disk_setup *d, const char *name,
			char *path, size_t len)
{
	char cli[4096];

	snprintf(path, len, "%s/%s", d->dir, name);
	linux_cli(vm, "snapshot", cli, sizeof(cli), path, NULL);
}

/*
 * The guest writes and syncs a file a second. Marked while paused, run on,
 * reset: the disk is again what it was at the mark (compared through
 * snapshots taken at the mark, before the reset and after it).
 */
Test(linux_disk, reset_forgets_the_writes_since_the_mark, .timeout = 150)
{
	char s1[128], s2[128], s3[128], cli[4096], *out;
	struct disk_setup d;
	struct linux_vm vm;
	uint32_t at_mark, before_reset, after_reset, base;
	char *kernel = linux_small_kernel();
	const char *extra[] = { "--disk", NULL, NULL };

	make_image(&d);
	extra[1] = d.img;
	linux_start(&vm, kernel, disk_init, "disktest=ticks", extra);
	wait_tick(&vm, 2);
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	api_put(&vm, "/v1/vms/0/reset-point");
	base = file_crc(d.img);
	snapshot_to(&vm, &d, "at-mark", s1, sizeof(s1));
	out = linux_slurp(vm.console);
	cr_log_info("marked at tick %u", last_tick(out));
	linux_cli(&vm, "resume", cli, sizeof(cli), NULL);
	wait_tick(&vm, last_tick(out) + 3);
	free(out);
	linux_cli(&vm, "pause", cli, sizeof(cli), NULL);
	snapshot_to(&vm, &d, "before-reset", s2, sizeof(s2));
	api_put(&vm, "/v1/vms/0/reset");
	snapshot_to(&vm, &d, "after-reset", s3, sizeof(s3));
	at_mark = snapshot_disk_crc(d.img, s1);
	before_reset = snapshot_disk_crc(d.img, s2);
	after_reset = snapshot_disk_crc(d.img, s3);
	cr_expect_neq(before_reset, at_mark, "the ticks after the mark never reached the disk");
	cr_expect_eq(after_reset, at_mark, "the reset kept writes made since the mark");
	/* And it runs on from the mark. */
	out = linux_slurp(vm.console);
	linux_cli(&vm, "resume", cli, sizeof(cli), NULL);
	wait_tick(&vm, last_tick(out) + 1);
	free(out);
	linux_stop(&vm);
	cr_expect_eq(file_crc(d.img), base, "the image file changed after the mark");
	free(kernel);
	drop_setup(&d);
}
