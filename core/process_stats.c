#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/process_stats.h"

unsigned process_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n >= 3 ? n - 3 : 0; /* ".", ".." and the directory's own fd */
}

long process_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long long process_uss_kib(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	long long sum = 0, v;
	char line[128];
	bool seen = false;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Private_Clean: %lld kB", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %lld kB", &v) == 1) {
			sum += v;
			seen = true;
		}
	}
	fclose(f);
	return seen ? sum : -1;
}
