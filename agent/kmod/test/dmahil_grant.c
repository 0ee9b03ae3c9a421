// SPDX-License-Identifier: GPL-2.0
/*
 * dmahil_grant: runs in the smoke test's domU (qemu/kmod-smoke.sh, boot
 * "domu"). gntallocs one writable 4 KiB page to domain 0, fills it with a known
 * pattern (the same generator as dmahil_smoke's fill(), seed 7), prints
 *   dmahil-grant: ref=<gref> domid0
 * on the console (dom0 reads it from xenconsoled's log) and keeps the grant
 * alive until it is killed (dom0 destroys the domain when its test is done).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>

#include <xen/gntalloc.h>

#define PG 4096u

int main(void)
{
	struct ioctl_gntalloc_alloc_gref *a;
	__u32 seed = 7, ref;
	size_t i;
	__u8 *p;
	int fd;

	a = calloc(1, sizeof(*a) + sizeof(__u32));
	fd = open("/dev/xen/gntalloc", O_RDWR);
	if (!a || fd < 0) {
		printf("dmahil-grant: FAIL: open /dev/xen/gntalloc: %s\n",
		       strerror(errno));
		return 1;
	}
	a->domid = 0;
	a->flags = GNTALLOC_FLAG_WRITABLE;
	a->count = 1;
	if (ioctl(fd, IOCTL_GNTALLOC_ALLOC_GREF, a)) {
		printf("dmahil-grant: FAIL: IOCTL_GNTALLOC_ALLOC_GREF: %s\n",
		       strerror(errno));
		return 1;
	}
	p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a->index);
	if (p == MAP_FAILED) {
		printf("dmahil-grant: FAIL: mmap: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < PG; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (__u8)(seed >> 16);
	}
	memcpy(&ref, (char *)a +
	       offsetof(struct ioctl_gntalloc_alloc_gref, gref_ids),
	       sizeof(ref));
	printf("dmahil-grant: ref=%u domid0\n", ref);
	fflush(stdout);
	for (;;)
		pause();
}
