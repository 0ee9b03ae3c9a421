// SPDX-License-Identifier: GPL-2.0
/*
 * dmahil_smoke: the in-dom0 test of dmahil.ko run by qemu/kmod-smoke.sh.
 *
 * Static aarch64 binary; needs /dev/dmahil (module loaded, edu bound),
 * /dev/xen/gntalloc and /dev/xen/gntdev.  It makes a foreign-mapped page
 * without a second domain: dom0 gntallocs two pages to domid 0 and gntdev-maps
 * its own grants (the gntdev view's pfn is a ballooned dom0 page whose p2m
 * entry points at the gntalloc page's frame: pfn != bfn).
 *
 * Checks (each prints "ok"/"FAIL" with the values):
 *   data       foreign pin: pfn != bfn; MAP: dma_addr == bfn << 12,
 *              SEG_FOREIGN; anonymous pin: pfn == bfn; XFER WRITE then CPU
 *              read, CPU write then XFER READ, page and sg mappings; XFER
 *              outside a mapping -> EACCES; bad args -> EINVAL, unknown
 *              handles -> ENOENT, UNPIN while mapped -> EBUSY;
 *   bypass     faults=1: dma_addr == pfn << 12, SEG_WRITE_REFUSED (not the
 *              page's bus address), and an XFER READ of the foreign page
 *              returns the wrong data; a WRITE there (memory dom0 no longer
 *              owns) is refused with EACCES; right segments never carry
 *              SEG_WRITE_REFUSED;
 *   audit      for faults 0, 2 and 4: the maintenance MAP and UNMAP of one
 *              4 KiB page (foreign and anonymous, TO_DEVICE and FROM_DEVICE)
 *              report.  Coherent engine: none at all.  Non-coherent (Linux
 *              6.1, drivers/xen/swiotlb-xen.c, arch/arm/xen/mm.c,
 *              arch/arm64/mm/dma-mapping.c): faults=0 map TO_DEVICE -> one
 *              CLEAN; map FROM_DEVICE -> INVAL (hypercall) or CLEAN (arm64
 *              arch_sync_dma_for_device cleans for every direction); unmap
 *              FROM_DEVICE -> INVAL; unmap TO_DEVICE -> none; the address is
 *              bfn << 12 for a HYPERCALL record; an ARCH_SYNC one is at
 *              pfn << 12 on map, bfn << 12 on unmap.  faults=2 -> no
 *              records.  faults=4 -> the map's record is at
 *              (bfn + 1) << 12; the unmap is normal.  The faults act on
 *              mappings that hold a foreign page only: the anonymous page
 *              keeps the faults=0 records;
 *   domU page  with --grant DOMID:REF (a page another domain granted, filled
 *              by dmahil_grant with seed 7): pfn != bfn,
 *              dma_addr == bfn << 12, XFER READ sees the domU's bytes, and
 *              on a non-coherent engine the maintenance is the
 *              GNTTABOP_cache_flush HYPERCALL at bfn << 12 (map TO_DEVICE
 *              CLEAN, map FROM_DEVICE INVAL, unmap FROM_DEVICE INVAL): its
 *              bus frame is not dom0 RAM, so swiotlb-xen's pfn_valid() test
 *              sends it to Xen.
 *
 * Usage: dmahil_smoke [--expect-coherent 0|1] [--grant DOMID:REF]
 * (exit 0 iff every check passed)
 * Prints "dmahil-smoke: PASS ..." or "dmahil-smoke: FAIL ..." last.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/types.h>

/* <xen/gntdev.h> uses these without defining them */
typedef __u32 grant_ref_t;
typedef __u16 domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

#include "../dmahil_uapi.h"

#define PG 4096u /* bytes: one Xen page */
#define NPAGES 2u
#define MAX_OPS 64u

static int checks, failures;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (!ok)
		failures++;
	printf("dmahil-smoke: %s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *what)
{
	printf("dmahil-smoke: FAIL: %s: %s\n", what, strerror(errno));
	printf("dmahil-smoke: FAIL (setup)\n");
	exit(1);
}

static int fd; /* /dev/dmahil */

/* ioctl returning 0 or -errno */
static int io(unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static void set_faults(unsigned int v)
{
	FILE *f = fopen("/sys/module/dmahil/parameters/faults", "w");

	if (!f || fprintf(f, "%u\n", v) < 0 || fclose(f))
		die("write /sys/module/dmahil/parameters/faults");
	struct dmahil_info info;

	if (io(DMAHIL_IOC_INFO, &info))
		die("DMAHIL_IOC_INFO");
	check(info.faults == v, "faults=%u in effect (INFO says %u)", v,
	      info.faults);
}

struct pinned {
	__u32 pin;
	__u64 pfn[NPAGES], bfn[NPAGES];
};

static int do_pin(void *addr, __u32 pages, struct pinned *p)
{
	struct dmahil_pin a = { .uaddr = (uintptr_t)addr,
				.pages = pages,
				.pfns_ptr = (uintptr_t)p->pfn,
				.bfns_ptr = (uintptr_t)p->bfn };
	int err = io(DMAHIL_IOC_PIN, &a);

	p->pin = a.pin;
	return err;
}

struct mapped {
	__u32 id, nsegs;
	struct dmahil_seg seg[NPAGES];
	struct dmahil_cache_op ops[MAX_OPS];
	__u32 nops, dropped;
};

static int do_map(__u32 pin, __u32 dir, __u64 off, __u64 len,
		  __u32 sg, struct mapped *m)
{
	struct dmahil_map a = { .pin = pin,
				.direction = dir,
				.offset = off,
				.length = len,
				.sg = sg,
				.nsegs = NPAGES,
				.segs_ptr = (uintptr_t)m->seg,
				.ops = { .ptr = (uintptr_t)m->ops,
					 .cap = MAX_OPS } };
	int err = io(DMAHIL_IOC_MAP, &a);

	m->id = a.mapping;
	m->nsegs = a.nsegs;
	m->nops = a.ops.count;
	m->dropped = a.ops.dropped;
	return err;
}

static int do_unmap(__u32 id, struct mapped *m)
{
	struct dmahil_unmap a = { .mapping = id,
				  .ops = { .ptr = (uintptr_t)m->ops,
					   .cap = MAX_OPS } };
	int err = io(DMAHIL_IOC_UNMAP, &a);

	m->nops = a.ops.count;
	m->dropped = a.ops.dropped;
	return err;
}

/*
 * A segment's flags but DMAHIL_SEG_BFN_PFN_VALID: the foreign page here is
 * dom0's own grant, whose bus frame lies in dom0's RAM (pfn_valid), except
 * with --grant, where it is a domU's.
 */
static __u32 seg_flags(const struct dmahil_seg *s)
{
	return s->flags & ~DMAHIL_SEG_BFN_PFN_VALID;
}

static int xfer(__u64 dma, void *buf, __u32 len, __u32 op)
{
	struct dmahil_xfer a = { .dma_addr = dma,
				 .uaddr = (uintptr_t)buf,
				 .length = len,
				 .op = op };
	return io(DMAHIL_IOC_XFER, &a);
}

static void fill(__u8 *p, size_t n, __u32 seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (__u8)(seed >> 16);
	}
}

static const char *kind_name(__u32 k)
{
	if (k == DMAHIL_OP_HYPERCALL)
		return "HYPERCALL";
	if (k == DMAHIL_OP_ARCH_SYNC)
		return "ARCH_SYNC";
	return "?";
}

static const char *op_name(__u32 op)
{
	switch (op) {
	case DMAHIL_CACHE_CLEAN:
		return "CLEAN";
	case DMAHIL_CACHE_INVAL:
		return "INVAL";
	case DMAHIL_CACHE_CLEAN | DMAHIL_CACHE_INVAL:
		return "CLEAN|INVAL";
	default:
		return "none";
	}
}

static void print_ops(const char *what, const struct mapped *m)
{
	printf("dmahil-smoke:   %s: %u record(s)%s\n", what, m->nops,
	       m->dropped ? " (some dropped)" : "");
	for (__u32 i = 0; i < m->nops && i < MAX_OPS; i++)
		printf("dmahil-smoke:     %s %s addr %#llx len %u\n",
		       kind_name(m->ops[i].kind), op_name(m->ops[i].op),
		       (__u64)m->ops[i].addr, m->ops[i].length);
}

/*
 * Do the records match {ops[i], address, 4096}?  n == 0: no records.  The
 * address is bfn << 12 for a HYPERCALL record (cflush.a.dev_bus_addr); for an
 * ARCH_SYNC record it is `arch_frame` << 12: swiotlb-xen passes page_to_phys()
 * (the pfn) on map but xen_dma_to_phys(dma_addr) (the bus frame, as Arm's
 * bfn_to_pfn() is the identity) on unmap and sync.  one_off: the
 * SYNC_MISADDRESS fault, (bfn + 1) << 12 whatever the kind.
 */
static void expect_ops(const char *what, const struct mapped *m, __u32 n,
		       const __u32 *ops, __u64 arch_frame, __u64 bfn,
		       int one_off)
{
	print_ops(what, m);
	if (!n) {
		check(m->nops == 0 && !m->dropped,
		      "%s: no maintenance (got %u)", what, m->nops);
		return;
	}
	check(m->nops == n, "%s: %u record(s) (got %u)", what, n, m->nops);
	for (__u32 i = 0; i < n && i < m->nops; i++) {
		const struct dmahil_cache_op *r = &m->ops[i];
		__u64 frame = r->kind == DMAHIL_OP_HYPERCALL ? bfn : arch_frame;
		__u64 want = (one_off ? bfn + 1 : frame) * PG;
		__u32 want_op = ops[i];
		int ok = r->op == want_op && r->addr == want &&
			 r->length == PG && !r->pad;

		check(ok,
		      "%s: record %u %s %s at %#llx len %u (want %s at %#llx len %u)",
		      what, i, kind_name(r->kind), op_name(r->op),
		      (__u64)r->addr, r->length, op_name(want_op), want, PG);
	}
}

static const __u32 CLEAN[] = { DMAHIL_CACHE_CLEAN };
static const __u32 INVAL[] = { DMAHIL_CACHE_INVAL };

/*
 * Map and unmap one page of `p` in direction `dir` with the fault switches
 * `fl` set (`efl`: those in effect for this page) and check the maintenance
 * each reports.
 */
static void audit_one(__u32 coherent, const struct pinned *p, int foreign,
		      unsigned int fl, unsigned int efl, __u32 dir)
{
	const char *d = dir == DMAHIL_DMA_TO_DEVICE ? "TO_DEVICE" :
						      "FROM_DEVICE";
	const char *kind = foreign ? "foreign" : "anon";
	struct mapped m = { 0 }, u = { 0 };
	const __u32 *o;
	char what[96];
	int err;

	err = do_map(p->pin, dir, 0, PG, 0, &m);
	check(!err && m.nsegs == 1, "faults=%u MAP %s %s: %d", fl, kind, d,
	      err);
	if (err)
		return;
	snprintf(what, sizeof(what), "faults=%u %s map %s", fl, kind, d);
	if (coherent || efl == DMAHIL_FAULT_SKIP_CPU_SYNC) {
		expect_ops(what, &m, 0, NULL, 0, 0, 0);
	} else {
		/*
		 * for_device: HYPERCALL -> CLEAN or INVAL by direction;
		 * ARCH_SYNC -> CLEAN always
		 */
		o = CLEAN;
		if (dir == DMAHIL_DMA_FROM_DEVICE && m.nops &&
		    m.ops[0].kind == DMAHIL_OP_HYPERCALL)
			o = INVAL;
		expect_ops(what, &m, 1, o, p->pfn[0], p->bfn[0],
			   efl == DMAHIL_FAULT_SYNC_MISADDRESS);
	}
	err = do_unmap(m.id, &u);
	snprintf(what, sizeof(what), "faults=%u %s unmap %s", fl, kind, d);
	check(!err, "%s: %d", what, err);
	if (coherent || efl == DMAHIL_FAULT_SKIP_CPU_SYNC ||
	    dir == DMAHIL_DMA_TO_DEVICE)
		expect_ops(what, &u, 0, NULL, 0, 0, 0);
	else
		expect_ops(what, &u, 1, INVAL, p->bfn[0], p->bfn[0], 0);
}

/*
 * The DMA-API audit of a device (dev_audit.c) on the engine itself: the
 * module's own dma_map_page() calls for edu go through the watched ops, so
 * each map comes back with its pfn, bfn and bus address, and on a
 * non-coherent boot with the maintenance the kernel issued inside it.
 */
static void watch_engine(const char *engine, __u32 coherent,
			 const struct pinned *pf)
{
	struct dmahil_watch w = { .on = 1 };
	struct dmahil_dev_op ops[64];
	struct dmahil_watch_read r = { .ptr = (uintptr_t)ops, .cap = 64 };
	__u32 maps = 0, unmaps = 0, maint = 0, right = 0;
	struct mapped m;
	int err;

	snprintf(w.device, sizeof(w.device), "%s", engine + 4); /* "edu " */
	err = io(DMAHIL_IOC_WATCH, &w);
	check(!err && !w.direct, "WATCH %s: %d, direct %u", w.device, err,
	      w.direct);
	if (err)
		return;
	check(io(DMAHIL_IOC_WATCH, &w) == -EBUSY, "WATCH twice -> EBUSY");
	w.direct = 0;
	err = do_map(pf->pin, DMAHIL_DMA_TO_DEVICE, 0, NPAGES * PG, 0, &m);
	check(!err && m.nsegs == NPAGES, "MAP foreign while watched: %d", err);
	if (!err)
		check(!do_unmap(m.id, &m), "UNMAP foreign while watched");
	err = io(DMAHIL_IOC_WATCH_READ, &r);
	check(!err, "WATCH_READ: %d, %u records, %u dropped", err, r.count,
	      r.dropped);
	for (__u32 i = 0; !err && i < r.count; i++) {
		const struct dmahil_dev_op *o = &ops[i];

		if (o->op == DMAHIL_DEV_MAINT) {
			maint++;
			continue;
		}
		if (o->op == DMAHIL_DEV_UNMAP) {
			unmaps++;
			continue;
		}
		if (o->op != DMAHIL_DEV_MAP || maps >= NPAGES)
			continue;
		right += o->pfn == pf->pfn[maps] && o->bfn == pf->bfn[maps] &&
			 o->dma_addr == pf->bfn[maps] * PG &&
			 o->expected == o->dma_addr &&
			 (o->flags & DMAHIL_SEG_FOREIGN) &&
			 o->dir == DMAHIL_DMA_TO_DEVICE;
		maps++;
	}
	check(maps == NPAGES && right == NPAGES && unmaps == NPAGES,
	      "watched: %u maps (%u with pfn, bfn, dma_addr == expected), %u unmaps",
	      maps, right, unmaps);
	/* a clean per page before the device reads, none needed after */
	check(coherent ? maint == 0 : maint >= NPAGES,
	      "watched: %u maintenance records inside the calls (coherent=%u)",
	      maint, coherent);
	w.on = 0;
	check(io(DMAHIL_IOC_WATCH, &w) == 0, "WATCH off");
	check(io(DMAHIL_IOC_WATCH_READ, &r) == -ENOENT,
	      "WATCH_READ without a watch -> ENOENT");
	snprintf(w.device, sizeof(w.device), "0000:ff:1f.7");
	w.on = 1;
	check(io(DMAHIL_IOC_WATCH, &w) == -ENODEV,
	      "WATCH an absent device -> ENODEV");
}

int main(int argc, char **argv)
{
	int expect_coherent = -1;
	unsigned int grant_domid = 0, grant_ref = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--expect-coherent") && i + 1 < argc) {
			expect_coherent = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--grant") && i + 1 < argc &&
			   sscanf(argv[++i], "%u:%u", &grant_domid,
				  &grant_ref) == 2 &&
			   grant_domid) {
		} else {
			fprintf(stderr,
				"usage: %s [--expect-coherent 0|1] [--grant DOMID:REF]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	fd = open(DMAHIL_DEVICE_PATH, O_RDWR);
	if (fd < 0)
		die("open " DMAHIL_DEVICE_PATH);
	struct dmahil_info info;

	if (io(DMAHIL_IOC_INFO, &info))
		die("DMAHIL_IOC_INFO");
	printf("dmahil-smoke: info abi %u faults %u coherent=%u bound %u\n",
	       info.abi_version, info.faults, info.coherent, info.engine_bound);
	printf("dmahil-smoke: info mask %#llx engine '%s'\n",
	       (__u64)info.dma_mask, info.engine);
	printf("dmahil-smoke: info audit_hypercall %u audit_arch_sync %u\n",
	       info.audit_hypercall, info.audit_arch_sync);
	check(info.abi_version == DMAHIL_ABI_VERSION, "INFO abi_version %u",
	      info.abi_version);
	check(info.engine_bound == 1 && !strncmp(info.engine, "edu ", 4),
	      "engine bound ('%s')", info.engine);
	check(info.audit_hypercall == 1 && info.audit_arch_sync == 1,
	      "audit probes armed (%u, %u)", info.audit_hypercall,
	      info.audit_arch_sync);
	if (expect_coherent >= 0)
		check((int)info.coherent == expect_coherent,
		      "engine coherent=%u (want %d)", info.coherent,
		      expect_coherent);
	if (info.faults)
		set_faults(0);

	/* a foreign page: gntalloc to ourselves, gntdev-map our own grants */
	int ga = open("/dev/xen/gntalloc", O_RDWR),
	    gd = open("/dev/xen/gntdev", O_RDWR);
	if (ga < 0)
		die("open /dev/xen/gntalloc");
	if (gd < 0)
		die("open /dev/xen/gntdev");
	/*
	 * the structs end in a one-element array that really holds `count`:
	 * size them by hand
	 */
	struct ioctl_gntalloc_alloc_gref *alloc =
		calloc(1, sizeof(*alloc) + NPAGES * sizeof(__u32));
	struct ioctl_gntdev_map_grant_ref *gmap =
		calloc(1, sizeof(*gmap) +
			  NPAGES * sizeof(struct ioctl_gntdev_grant_ref));
	if (!alloc || !gmap)
		die("calloc");
	__u32 *grefs =
		(__u32 *)((char *)alloc +
			     offsetof(struct ioctl_gntalloc_alloc_gref,
				      gref_ids));
	struct ioctl_gntdev_grant_ref *refs =
		(struct ioctl_gntdev_grant_ref
			 *)((char *)gmap +
			    offsetof(struct ioctl_gntdev_map_grant_ref, refs));
	alloc->domid = 0;
	alloc->flags = GNTALLOC_FLAG_WRITABLE;
	alloc->count = NPAGES;
	if (ioctl(ga, IOCTL_GNTALLOC_ALLOC_GREF, alloc))
		die("IOCTL_GNTALLOC_ALLOC_GREF");
	__u8 *own = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			    MAP_SHARED, ga, alloc->index);
	if (own == MAP_FAILED)
		die("mmap gntalloc");
	gmap->count = NPAGES;
	for (__u32 i = 0; i < NPAGES; i++) {
		refs[i].domid = 0;
		refs[i].ref = grefs[i];
	}
	if (ioctl(gd, IOCTL_GNTDEV_MAP_GRANT_REF, gmap))
		die("IOCTL_GNTDEV_MAP_GRANT_REF");
	__u8 *frn = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			    MAP_SHARED, gd, gmap->index);
	if (frn == MAP_FAILED)
		die("mmap gntdev");
	printf("dmahil-smoke: grants %u %u mapped from domid 0\n", grefs[0],
	       grefs[1]);
	fill(own, NPAGES * PG, 1);
	check(!memcmp(own, frn, NPAGES * PG),
	      "gntdev view shows the gntalloc page's bytes");

	__u8 *anon = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		die("mmap anonymous");
	fill(anon, NPAGES * PG, 2);

	static __u8 buf[NPAGES * PG], want[NPAGES * PG];
	struct pinned pf = { 0 }, pa = { 0 };
	struct mapped m = { 0 }, m2 = { 0 }, u = { 0 };
	int err;

	/* ---- data path ---- */
	err = do_pin(frn, NPAGES, &pf);
	check(!err && pf.pin, "PIN foreign: %d, handle %u", err, pf.pin);
	for (__u32 i = 0; i < NPAGES; i++)
		check(pf.pfn[i] != pf.bfn[i],
		      "foreign page %u: pfn %#llx != bfn %#llx", i,
		      pf.pfn[i], pf.bfn[i]);
	err = do_pin(anon, NPAGES, &pa);
	check(!err && pa.pin, "PIN anonymous: %d, handle %u", err, pa.pin);
	for (__u32 i = 0; i < NPAGES; i++)
		check(pa.pfn[i] == pa.bfn[i],
		      "anonymous page %u: pfn %#llx == bfn %#llx", i,
		      pa.pfn[i], pa.bfn[i]);

	err = do_map(pf.pin, DMAHIL_DMA_BIDIRECTIONAL, 0, NPAGES * PG, 0, &m);
	check(!err && m.id && m.nsegs == NPAGES,
	      "MAP foreign (dma_map_page x%u): %d, %u segs", NPAGES, err,
	      m.nsegs);
	for (__u32 i = 0; i < m.nsegs && i < NPAGES; i++)
		check(m.seg[i].dma_addr == pf.bfn[i] * PG &&
		      m.seg[i].pfn == pf.pfn[i] &&
		      m.seg[i].bfn == pf.bfn[i] &&
		      seg_flags(&m.seg[i]) == DMAHIL_SEG_FOREIGN &&
		      m.seg[i].offset == i * PG &&
		      m.seg[i].length == PG,
		      "foreign seg %u: dma_addr %#llx == bfn << 12, flags %#x (FOREIGN)",
		      i, (__u64)m.seg[i].dma_addr, m.seg[i].flags);
	if (m.nsegs == NPAGES) {
		fill(buf, PG, 3);
		err = xfer(m.seg[0].dma_addr, buf, PG, DMAHIL_XFER_WRITE);
		check(!err && !memcmp(own, buf, PG) && !memcmp(frn, buf, PG),
		      "XFER WRITE 4096 bytes to the foreign page, CPU reads them: %d",
		      err);
		fill(own + PG, PG, 4);
		memset(buf, 0, PG);
		err = xfer(m.seg[1].dma_addr, buf, PG, DMAHIL_XFER_READ);
		check(!err && !memcmp(own + PG, buf, PG),
		      "CPU writes, XFER READ 4096 bytes sees them: %d", err);
		err = xfer(m.seg[1].dma_addr + 100, buf, 300, DMAHIL_XFER_READ);
		check(!err && !memcmp(own + PG + 100, buf, 300),
		      "XFER READ 300 bytes at +100: %d", err);

		err = xfer(m.seg[0].dma_addr + PG - 100, buf, 200,
			   DMAHIL_XFER_READ);
		check(err == -EACCES,
		      "XFER across the end of a segment -> EACCES (%d)", err);
		err = xfer(0x1000, buf, 16, DMAHIL_XFER_READ);
		check(err == -EACCES,
		      "XFER at 0x1000 (no mapping) -> EACCES (%d)", err);
		err = xfer(pf.pfn[0] * PG, buf, 16, DMAHIL_XFER_READ);
		check(err == -EACCES,
		      "XFER at the foreign page's pfn address -> EACCES (%d)",
		      err);
	}

	/* bad arguments */
	struct dmahil_pin bp = { .uaddr = (uintptr_t)anon + 8, .pages = 1 };

	check(io(DMAHIL_IOC_PIN, &bp) == -EINVAL,
	      "PIN unaligned uaddr -> EINVAL");
	bp = (struct dmahil_pin){ .uaddr = (uintptr_t)anon, .pages = 0 };
	check(io(DMAHIL_IOC_PIN, &bp) == -EINVAL, "PIN 0 pages -> EINVAL");
	bp.pages = DMAHIL_MAX_PIN_PAGES + 1;
	check(io(DMAHIL_IOC_PIN, &bp) == -EINVAL, "PIN %u pages -> EINVAL",
	      bp.pages);
	struct dmahil_seg segs[4];
	struct dmahil_map bm = { .pin = pa.pin,
				 .direction = 3,
				 .length = PG,
				 .nsegs = 4,
				 .segs_ptr = (uintptr_t)segs };
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL, "MAP direction 3 -> EINVAL");
	bm.direction = DMAHIL_DMA_TO_DEVICE;
	bm.length = 0;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL, "MAP length 0 -> EINVAL");
	bm.length = NPAGES * PG;
	bm.offset = 1;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL,
	      "MAP past the pin's end -> EINVAL");
	bm.offset = 0;
	bm.length = UINT64_MAX;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL,
	      "MAP offset + length overflows -> EINVAL");
	bm.length = PG;
	bm.ops.pad = 1;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL, "MAP ops.pad != 0 -> EINVAL");
	bm.ops.pad = 0;
	bm.mask_bits = 16;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL, "MAP mask_bits 16 -> EINVAL");
	bm.mask_bits = 0;
	bm.sg = 2;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL, "MAP sg 2 -> EINVAL");
	bm.sg = 0;
	bm.nsegs = 1;
	bm.length = 2 * PG;
	check(io(DMAHIL_IOC_MAP, &bm) == -EINVAL,
	      "MAP 2 pages into 1 segment slot -> EINVAL");
	bm.pin = 999;
	check(io(DMAHIL_IOC_MAP, &bm) == -ENOENT, "MAP unknown pin -> ENOENT");
	struct dmahil_unmap bu = { .mapping = m.id, .pad = 1 };

	check(io(DMAHIL_IOC_UNMAP, &bu) == -EINVAL, "UNMAP pad != 0 -> EINVAL");
	bu = (struct dmahil_unmap){ .mapping = 999 };
	check(io(DMAHIL_IOC_UNMAP, &bu) == -ENOENT,
	      "UNMAP unknown mapping -> ENOENT");
	struct dmahil_sync bs = { .mapping = m.id, .for_ = 3 };

	check(io(DMAHIL_IOC_SYNC, &bs) == -EINVAL, "SYNC for_ 3 -> EINVAL");
	bs.for_ = DMAHIL_SYNC_FOR_CPU;
	check(io(DMAHIL_IOC_SYNC, &bs) == 0, "SYNC for_cpu -> 0");
	check(xfer(m.seg[0].dma_addr, buf, 0, DMAHIL_XFER_READ) == -EINVAL,
	      "XFER length 0 -> EINVAL");
	check(xfer(m.seg[0].dma_addr, buf, 16, 3) == -EINVAL,
	      "XFER op 3 -> EINVAL");
	check(xfer(m.seg[0].dma_addr, buf, DMAHIL_MAX_XFER_BYTES + 1,
		   DMAHIL_XFER_READ) == -EINVAL,
	      "XFER > %u bytes -> EINVAL", DMAHIL_MAX_XFER_BYTES);
	__u32 id = 999;

	check(io(DMAHIL_IOC_UNPIN, &id) == -ENOENT,
	      "UNPIN unknown pin -> ENOENT");
	check(io(DMAHIL_IOC_UNPIN, &pf.pin) == -EBUSY,
	      "UNPIN while mapped -> EBUSY");
	check(ioctl(fd, _IO('D', 0x7f)) == -1 && errno == ENOTTY,
	      "unknown ioctl -> ENOTTY");

	/* sg: anonymous (pfn == bfn) and foreign pages */
	err = do_map(pa.pin, DMAHIL_DMA_TO_DEVICE, 0, NPAGES * PG, 1, &m2);
	check(!err && m2.nsegs == NPAGES &&
	      m2.seg[0].dma_addr == pa.pfn[0] * PG &&
	      m2.seg[1].dma_addr == pa.pfn[1] * PG &&
	      !m2.seg[0].flags && !m2.seg[1].flags,
	      "MAP anonymous sg: %d, %u segs, dma_addr == pfn << 12, no flags",
	      err, m2.nsegs);
	if (!err && m2.nsegs == NPAGES) {
		err = xfer(m2.seg[1].dma_addr + 8, buf, 1000, DMAHIL_XFER_READ);
		check(!err && !memcmp(anon + PG + 8, buf, 1000),
		      "XFER READ anonymous page via sg: %d", err);
		check(!do_unmap(m2.id, &u), "UNMAP anonymous sg");
	}
	err = do_map(pf.pin, DMAHIL_DMA_FROM_DEVICE, 512, PG, 1, &m2);
	check(!err && m2.nsegs == 2 &&
	      m2.seg[0].dma_addr == pf.bfn[0] * PG + 512 &&
	      m2.seg[0].length == PG - 512 &&
	      m2.seg[1].dma_addr == pf.bfn[1] * PG &&
	      m2.seg[1].length == 512 &&
	      seg_flags(&m2.seg[0]) == DMAHIL_SEG_FOREIGN,
	      "MAP foreign sg [512, 4608): %d, %u segs at bfn << 12 + 512 / bfn << 12",
	      err, m2.nsegs);
	if (!err) {
		fill(buf, 512, 5);
		err = xfer(m2.seg[1].dma_addr, buf, 512, DMAHIL_XFER_WRITE);
		check(!err && !memcmp(own + PG, buf, 512),
		      "XFER WRITE 512 bytes via sg segment 1: %d", err);
		check(!do_unmap(m2.id, &u), "UNMAP foreign sg");
	}
	check(!do_unmap(m.id, &u), "UNMAP foreign");
	check(xfer(m.seg[0].dma_addr, buf, 16, DMAHIL_XFER_READ) == -EACCES,
	      "XFER after UNMAP -> EACCES");

	watch_engine(info.engine, info.coherent, &pf);

	/* ---- bypass: the engine gets the pfn address ---- */
	set_faults(DMAHIL_FAULT_BYPASS);
	err = do_map(pf.pin, DMAHIL_DMA_BIDIRECTIONAL, 0, PG, 0, &m);
	check(!err && m.nsegs == 1 && m.seg[0].dma_addr == pf.pfn[0] * PG &&
	      seg_flags(&m.seg[0]) ==
	      (DMAHIL_SEG_FOREIGN | DMAHIL_SEG_WRITE_REFUSED),
	      "bypass MAP foreign: dma_addr %#llx == pfn << 12 (%#llx), flags %#x (FOREIGN, WRITE_REFUSED)",
	      (__u64)m.seg[0].dma_addr, pf.pfn[0] * PG, m.seg[0].flags);
	if (!err) {
		fill(own, PG, 6);
		memcpy(want, own, PG);
		memset(buf, 0, PG);
		err = xfer(m.seg[0].dma_addr, buf, PG, DMAHIL_XFER_READ);
		__u32 same = 0;

		for (__u32 i = 0; i < PG / 8; i++)
			same += !memcmp(buf + 8 * i, want + 8 * i, 8);
		check(!err && same < PG / 8 / 2,
		      "bypass XFER READ of the foreign page returns wrong data (%u of %u words right): %d",
		      same, PG / 8, err);
		err = xfer(m.seg[0].dma_addr, buf, 64, DMAHIL_XFER_WRITE);
		check(err == -EACCES,
		      "bypass XFER WRITE to the pfn window (Xen's frame now) -> EACCES (%d)",
		      err);
		check(!do_unmap(m.id, &u), "UNMAP bypass mapping");
	}
	err = do_map(pa.pin, DMAHIL_DMA_BIDIRECTIONAL, 0, PG, 0, &m);
	if (!err) {
		err = xfer(m.seg[0].dma_addr, buf, PG, DMAHIL_XFER_READ);
		check(!err && !memcmp(buf, anon, PG) && !m.seg[0].flags,
		      "bypass on an anonymous page still reads right, flags %#x (none): %d",
		      m.seg[0].flags, err);
		do_unmap(m.id, &u);
	}
	set_faults(0);

	/* ---- the maintenance audit ---- */
	static const unsigned int fault_set[] = { 0, DMAHIL_FAULT_SKIP_CPU_SYNC,
					      DMAHIL_FAULT_SYNC_MISADDRESS };
	for (unsigned int fi = 0; fi < 3; fi++) {
		unsigned int fl = fault_set[fi];

		set_faults(fl);
		for (int foreign = 1; foreign >= 0; foreign--) {
			const struct pinned *p = foreign ? &pf : &pa;
			/* the faults act on mappings of foreign pages only */
			const unsigned int efl = foreign ? fl : 0;

			for (__u32 dir = DMAHIL_DMA_TO_DEVICE;
			     dir <= DMAHIL_DMA_FROM_DEVICE; dir++)
				audit_one(info.coherent, p, foreign, fl, efl,
					  dir);
		}
	}
	set_faults(0);

	/* ---- a page another domain granted us: the hypercall path ---- */
	if (grant_domid) {
		struct ioctl_gntdev_map_grant_ref *g1 =
			calloc(1, sizeof(*g1) +
				  sizeof(struct ioctl_gntdev_grant_ref));
		if (!g1)
			die("calloc");
		g1->count = 1;
		struct ioctl_gntdev_grant_ref *r1 =
			(struct ioctl_gntdev_grant_ref
				 *)((char *)g1 +
				    offsetof(struct ioctl_gntdev_map_grant_ref,
					     refs));
		r1->domid = (__u16)grant_domid;
		r1->ref = grant_ref;
		if (ioctl(gd, IOCTL_GNTDEV_MAP_GRANT_REF, g1))
			die("IOCTL_GNTDEV_MAP_GRANT_REF (domU grant)");
		__u8 *du = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED,
				   gd, g1->index);
		if (du == MAP_FAILED)
			die("mmap gntdev (domU grant)");
		fill(want, PG, 7);
		check(!memcmp(du, want, PG),
		      "domU %u grant %u: the page holds dmahil_grant's pattern",
		      grant_domid, grant_ref);
		struct pinned pd = { 0 };

		err = do_pin(du, 1, &pd);
		check(!err && pd.pfn[0] != pd.bfn[0],
		      "PIN domU page: %d, pfn %#llx bfn %#llx", err,
		      pd.pfn[0], pd.bfn[0]);
		err = do_map(pd.pin, DMAHIL_DMA_BIDIRECTIONAL, 0, PG, 0, &m);
		check(!err && m.seg[0].dma_addr == pd.bfn[0] * PG &&
		      m.seg[0].flags == DMAHIL_SEG_FOREIGN,
		      "MAP domU page: %d, dma_addr %#llx == bfn << 12, FOREIGN",
		      err, (__u64)m.seg[0].dma_addr);
		if (!err) {
			memset(buf, 0, PG);
			err = xfer(m.seg[0].dma_addr, buf, PG,
				   DMAHIL_XFER_READ);
			check(!err && !memcmp(buf, want, PG),
			      "XFER READ of the domU page sees its bytes: %d",
			      err);
			do_unmap(m.id, &u);
		}
		for (__u32 dir = DMAHIL_DMA_TO_DEVICE;
		     dir <= DMAHIL_DMA_FROM_DEVICE; dir++) {
			const char *d = dir == DMAHIL_DMA_TO_DEVICE
						? "TO_DEVICE"
						: "FROM_DEVICE";
			char what[96];

			err = do_map(pd.pin, dir, 0, PG, 0, &m);
			check(!err, "MAP domU page %s: %d", d, err);
			if (err)
				continue;
			snprintf(what, sizeof(what), "domU page map %s", d);
			if (info.coherent) {
				expect_ops(what, &m, 0, NULL, 0, 0, 0);
			} else {
				expect_ops(what, &m, 1,
					   dir == DMAHIL_DMA_TO_DEVICE ? CLEAN
								       : INVAL,
					   pd.bfn[0], pd.bfn[0], 0);
				check(m.nops == 1 &&
				      m.ops[0].kind ==
						      DMAHIL_OP_HYPERCALL,
				      "%s: via GNTTABOP_cache_flush", what);
			}
			err = do_unmap(m.id, &u);
			snprintf(what, sizeof(what), "domU page unmap %s", d);
			if (info.coherent || dir == DMAHIL_DMA_TO_DEVICE) {
				expect_ops(what, &u, 0, NULL, 0, 0, 0);
			} else {
				expect_ops(what, &u, 1, INVAL, pd.bfn[0],
					   pd.bfn[0], 0);
				check(u.nops == 1 &&
				      u.ops[0].kind ==
						      DMAHIL_OP_HYPERCALL,
				      "%s: via GNTTABOP_cache_flush", what);
			}
		}
		check(!io(DMAHIL_IOC_UNPIN, &pd.pin), "UNPIN domU page");
		munmap(du, PG);
		struct ioctl_gntdev_unmap_grant_ref gu1 = { .index = g1->index,
							    .count = 1 };
		check(!ioctl(gd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &gu1),
		      "gntdev unmap of the domU grant");
	}

	/* ---- close releases pins and mappings ---- */
	int fd2 = open(DMAHIL_DEVICE_PATH, O_RDWR);

	if (fd2 < 0)
		die("open " DMAHIL_DEVICE_PATH " again");
	int fd1 = fd;

	fd = fd2;
	struct pinned p2 = { 0 };

	err = do_pin(frn, NPAGES, &p2);
	if (!err)
		err = do_map(p2.pin, DMAHIL_DMA_BIDIRECTIONAL, 0, NPAGES * PG,
			     1, &m);
	check(!err, "second file: PIN + MAP: %d", err);
	check(!close(fd2), "close with a live pin and mapping");
	fd = fd1;

	check(!io(DMAHIL_IOC_UNPIN, &pa.pin), "UNPIN anonymous");
	check(!io(DMAHIL_IOC_UNPIN, &pf.pin), "UNPIN foreign");
	check(io(DMAHIL_IOC_UNPIN, &pf.pin) == -ENOENT,
	      "UNPIN twice -> ENOENT");
	close(fd);

	munmap(frn, NPAGES * PG);
	struct ioctl_gntdev_unmap_grant_ref gu = { .index = gmap->index,
						   .count = NPAGES };
	check(!ioctl(gd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &gu),
	      "gntdev unmap after the pins are gone");
	munmap(own, NPAGES * PG);
	struct ioctl_gntalloc_dealloc_gref gdl = { .index = alloc->index,
						   .count = NPAGES };
	check(!ioctl(ga, IOCTL_GNTALLOC_DEALLOC_GREF, &gdl),
	      "gntalloc dealloc");

	if (failures) {
		printf("dmahil-smoke: FAIL (%d of %d checks failed)\n",
		       failures, checks);
		return 1;
	}
	printf("dmahil-smoke: PASS (%d checks, coherent=%u)\n", checks,
	       info.coherent);
	return 0;
}
