// SPDX-License-Identifier: GPL-2.0
/*
 * dmahil.ko: the dom0 side of dmahil's linux-xen backend.  /dev/dmahil pins
 * user pages (a gntdev mapping of another domain's grants, or anonymous
 * memory), maps them for the DMA engine with the real DMA API (under Xen on
 * Arm: swiotlb-xen, drivers/xen/swiotlb-xen.c), syncs and unmaps them, drives
 * the engine (edu.c) only inside the windows it mapped, and returns the cache
 * maintenance each call caused (audit.c); it also watches a real device's
 * DMA-API traffic (dev_audit.c).  The ABI, limits and errno values
 * are in dmahil_uapi.h; docs/architecture.md says where it sits in dmahil.
 *
 * Pins and mappings belong to the open file and are released on close
 * (mappings are unmapped first, then pins unpinned).  One mutex (dmahil_lock)
 * serialises every ioctl, the release and the engine's bind and unbind, so
 * the engine runs one transfer at a time.
 *
 * The engine never writes where a kernel under test may have sent it: each
 * segment is judged when it is mapped (seg_write_safe()) and the engine may
 * only read a segment whose bus address is not the page's own or not within
 * the device's reach (DMAHIL_SEG_WRITE_REFUSED, in_window()).
 *
 * Module parameter faults (DMAHIL_FAULT_* of dmahil_uapi.h, read when a
 * mapping is made and kept for its life; writable at run time through
 * /sys/module/dmahil/parameters/faults).  The switches act only on mappings
 * that hold a foreign page (pfn != bfn): the bugs they reproduce are
 * swiotlb-xen's for foreign grants, and dom0's own pages stay a known-good
 * health check on a board booted with a fault:
 *   BYPASS          segments report (and XFER windows use)
 *                   page_to_phys(page) + offset, the dom0 pfn address,
 *                   instead of the DMA API's bus address; the real mapping
 *                   is still made and unmapped.  seg_write_safe() refuses
 *                   writes there, as for any wrong address.
 *   SKIP_CPU_SYNC   map and unmap with DMA_ATTR_SKIP_CPU_SYNC (no
 *                   maintenance); the SYNC ioctl is unaffected.
 *   SYNC_MISADDRESS map with DMA_ATTR_SKIP_CPU_SYNC, then
 *                   dma_sync_single_for_device() at each segment's bus
 *                   address + 4096 (one 4 KiB page off); SYNC ioctls on the
 *                   mapping are misaddressed the same way; unmap is normal.
 *   NO_COPY_BACK    unmap a mapping that is not DMA_TO_DEVICE with
 *                   DMA_ATTR_SKIP_CPU_SYNC: a bounce buffer is not copied
 *                   back (and a non-coherent unmap loses its invalidate).
 * A device watched by dev_audit.c gets the same bits on its driver's
 * mappings of foreign pages, as dmahil_uapi.h describes.
 */
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/swiotlb.h>
#include <linux/uaccess.h>
#include <xen/page.h>

#include "dmahil.h"

/*
 * bytes: the ABI's page, a Xen page (XEN_PAGE_SIZE); PAGE_SIZE is a multiple
 * of it (4 KiB or 64 KiB on arm64)
 */
#define DMAHIL_PAGE 4096u
/* live pins (and, separately, mappings) per open file */
#define DMAHIL_MAX_HANDLES 4096u
#define DMAHIL_FAULTS_ALL \
	(DMAHIL_FAULT_BYPASS | DMAHIL_FAULT_SKIP_CPU_SYNC | \
	 DMAHIL_FAULT_SYNC_MISADDRESS | DMAHIL_FAULT_NO_COPY_BACK)

/* serialises every ioctl, the release and the engine's bind and unbind */
DEFINE_MUTEX(dmahil_lock);

static unsigned int faults;
module_param(faults, uint, 0644);
MODULE_PARM_DESC(faults,
		 "DMAHIL_FAULT_* bit mask: 1 bypass (report page_to_phys), 2 map/unmap with DMA_ATTR_SKIP_CPU_SYNC, 4 sync one page past each segment, 8 no bounce copy back");

/**
 * dmahil_faults() - the DMAHIL_FAULT_* bits in effect now
 *
 * Return: the module parameter, unknown bits cleared.
 */
u32 dmahil_faults(void)
{
	return READ_ONCE(faults) & DMAHIL_FAULTS_ALL;
}

/**
 * struct dmahil_pin_k - a pin
 * @id: its handle
 * @npages: Linux pages pinned (PAGE_SIZE each)
 * @nslots: 4 KiB pages of the pin, the ABI's pages
 * @sparse: DMAHIL_PIN_SPARSE: 4 KiB page i is the start of @pages[i]
 * @nmaps: live mappings of this pin: DMAHIL_IOC_UNPIN is -EBUSY while > 0
 * @pages: the pinned Linux pages
 */
struct dmahil_pin_k {
	u32 id;
	u32 npages;
	u32 nslots;
	bool sparse;
	u32 nmaps;
	struct page **pages;
};

/**
 * slot_phys() - the physical address of a byte of a pin
 * @p: the pin
 * @off: bytes into the pin (4 KiB pages), < @p->nslots * DMAHIL_PAGE
 * @page: out: the Linux page that holds it
 * @poff: out: its offset in @page, bytes
 *
 * A sparse pin's 4 KiB page i is the first Xen frame of its Linux page i
 * (gntdev maps one grant per Linux page); a dense pin's pages follow each
 * other, XEN_PFN_PER_PAGE to a Linux page.
 *
 * Return: page_to_phys(*@page) + *@poff.
 */
static phys_addr_t slot_phys(const struct dmahil_pin_k *p, u64 off,
			     struct page **page, u32 *poff)
{
	u64 slot = off / DMAHIL_PAGE;

	if (p->sparse) {
		*page = p->pages[slot];
		*poff = off % DMAHIL_PAGE;
	} else {
		*page = p->pages[slot / XEN_PFN_PER_PAGE];
		*poff = (slot % XEN_PFN_PER_PAGE) * DMAHIL_PAGE +
			off % DMAHIL_PAGE;
	}
	return page_to_phys(*page) + *poff;
}

/**
 * struct dmahil_map_k - a mapping
 * @id: its handle
 * @faults: DMAHIL_FAULT_* when mapped (0 if the range holds no foreign page)
 * @pin: the pin it maps
 * @dev: the engine, referenced (get_device()) for the mapping's life
 * @dir: the DMA direction
 * @attrs: DMA attributes of the map
 * @unmap_attrs: DMA attributes of the unmap (DMA_ATTR_SKIP_CPU_SYNC only
 *	under DMAHIL_FAULT_SKIP_CPU_SYNC, or DMAHIL_FAULT_NO_COPY_BACK on a
 *	mapping that is not DMA_TO_DEVICE)
 * @sg: true if mapped with one dma_map_sgtable() over @sgt
 * @sgt: the scatterlist of an sg mapping
 * @nsegs: segments
 * @segs: the segments as reported: the XFER windows
 * @bus: the DMA API's address of each segment
 */
struct dmahil_map_k {
	u32 id;
	u32 faults;
	struct dmahil_pin_k *pin;
	struct device *dev;
	enum dma_data_direction dir;
	unsigned long attrs;
	unsigned long unmap_attrs;
	bool sg;
	struct sg_table sgt;
	u32 nsegs;
	struct dmahil_seg *segs;
	dma_addr_t *bus;
};

/**
 * struct dmahil_file - an open /dev/dmahil
 * @pins: struct dmahil_pin_k by handle
 * @maps: struct dmahil_map_k by handle
 */
struct dmahil_file {
	struct idr pins;
	struct idr maps;
};

/**
 * ops_check() - check a struct dmahil_ops_out from the user
 * @o: the struct
 *
 * Return: 0, or -EINVAL if @o->pad is not zero or @o->cap is not zero with a
 * NULL @o->ptr.
 */
static int ops_check(const struct dmahil_ops_out *o)
{
	if (o->pad)
		return -EINVAL;
	if (o->cap && !o->ptr)
		return -EINVAL;
	return 0;
}

/**
 * ops_finish() - end the audit begun for @o and copy its records out
 * @o: where the records go; count and dropped are filled in
 *
 * Return: 0, or -EFAULT if the records cannot be written to @o->ptr.
 */
static int ops_finish(struct dmahil_ops_out *o)
{
	const struct dmahil_cache_op *r;

	r = dmahil_audit_end(&o->count, &o->dropped);
	if (o->count && copy_to_user(u64_to_user_ptr(o->ptr), r,
				     o->count * sizeof(*r)))
		return -EFAULT;
	return 0;
}

/**
 * do_info() - DMAHIL_IOC_INFO: report the module's state
 * @arg: user pointer to struct dmahil_info
 *
 * Context: dmahil_lock held.
 * Return: 0, or -EFAULT if @arg cannot be written.
 */
static long do_info(void __user *arg)
{
	struct dmahil_info info = {};
	struct device *dev = dmahil_edu_dev();

	info.abi_version = DMAHIL_ABI_VERSION;
	info.faults = dmahil_faults();
	info.engine_bound = dev && !dmahil_edu_wedged();
	if (dev) {
		info.coherent = dev_is_dma_coherent(dev);
		info.dma_mask = dev->dma_mask ? *dev->dma_mask : 0;
	}
	info.audit_hypercall = dmahil_audit_hypercall_armed();
	info.audit_arch_sync = dmahil_audit_arch_sync_armed();
	dmahil_edu_name(info.engine, sizeof(info.engine));
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/**
 * pin_free() - unpin a pin's pages and free it
 * @p: the pin, already removed from its file's idr
 */
static void pin_free(struct dmahil_pin_k *p)
{
	unpin_user_pages(p->pages, p->npages);
	kvfree(p->pages);
	kfree(p);
}

/**
 * put_u64s() - copy an array of u64 to the user, if wanted
 * @uptr: user pointer, 0 if the caller does not want the values
 * @v: the values
 * @n: how many
 *
 * Return: 0, or -EFAULT if @uptr cannot be written.
 */
static int put_u64s(u64 uptr, const u64 *v, u32 n)
{
	if (!uptr)
		return 0;
	if (copy_to_user(u64_to_user_ptr(uptr), v, n * sizeof(*v)))
		return -EFAULT;
	return 0;
}

/**
 * do_pin() - DMAHIL_IOC_PIN: pin user pages
 * @f: the open file
 * @arg: user pointer to struct dmahil_pin
 *
 * Pins the Linux pages that hold @arg->pages 4 KiB pages at @arg->uaddr
 * (one Linux page per 4 KiB page with DMAHIL_PIN_SPARSE, else
 * XEN_PFN_PER_PAGE to a Linux page) with pin_user_pages_fast(FOLL_WRITE |
 * FOLL_LONGTERM) and reports each 4 KiB page's frame and pfn_to_bfn() of it
 * (the p2m's machine frame; include/xen/arm/page.h: "The pseudo-physical
 * frame (pfn) used in all the helpers is always based on Xen page
 * granularity (i.e 4KB)").
 *
 * Context: dmahil_lock held.
 * Return: 0 with @arg->pin and @arg->page_size set; -EFAULT if @arg,
 * @arg->pfns_ptr or @arg->bfns_ptr cannot be read or written, or not every
 * page could be pinned; -EINVAL if @arg->flags has a bit other than
 * DMAHIL_PIN_SPARSE, @arg->pages is 0 or above DMAHIL_MAX_PIN_PAGES, or
 * @arg->uaddr is 0, not PAGE_SIZE aligned, or the range overflows or ends
 * above TASK_SIZE; -ENOMEM if out of memory; -ENOSPC if the file holds
 * DMAHIL_MAX_HANDLES pins; or the error of pin_user_pages_fast().
 */
static long do_pin(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_pin a;
	struct dmahil_pin_k *p;
	u64 *pfns = NULL, *bfns = NULL, end;
	struct page *page;
	u32 i, npages, poff;
	bool sparse;
	long got;
	int err, id;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	sparse = a.flags & DMAHIL_PIN_SPARSE;
	npages = sparse ? a.pages : DIV_ROUND_UP(a.pages, XEN_PFN_PER_PAGE);
	if ((a.flags & ~DMAHIL_PIN_SPARSE) || !a.pages ||
	    a.pages > DMAHIL_MAX_PIN_PAGES || !a.uaddr || a.uaddr % PAGE_SIZE ||
	    check_add_overflow(a.uaddr, (u64)npages * PAGE_SIZE, &end) ||
	    end > TASK_SIZE)
		return -EINVAL;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->sparse = sparse;
	p->nslots = a.pages;
	p->pages = kvcalloc(npages, sizeof(*p->pages), GFP_KERNEL);
	pfns = kvcalloc(a.pages, sizeof(*pfns), GFP_KERNEL);
	bfns = kvcalloc(a.pages, sizeof(*bfns), GFP_KERNEL);
	if (!p->pages || !pfns || !bfns) {
		err = -ENOMEM;
		goto out_free;
	}
	got = pin_user_pages_fast(a.uaddr, npages, FOLL_WRITE | FOLL_LONGTERM,
				  p->pages);
	if (got != npages) {
		if (got > 0)
			unpin_user_pages(p->pages, got);
		err = got < 0 ? (int)got : -EFAULT;
		goto out_free;
	}
	p->npages = npages;
	for (i = 0; i < a.pages; i++) {
		pfns[i] = XEN_PFN_DOWN(slot_phys(p, (u64)i * DMAHIL_PAGE, &page,
						 &poff));
		bfns[i] = pfn_to_bfn(pfns[i]);
	}
	id = idr_alloc(&f->pins, p, 1, DMAHIL_MAX_HANDLES + 1, GFP_KERNEL);
	if (id < 0) {
		err = id;	/* -ENOSPC: out of handles; or -ENOMEM */
		goto out_unpin;
	}
	p->id = id;
	a.pin = id;
	a.page_size = PAGE_SIZE;
	err = put_u64s(a.pfns_ptr, pfns, a.pages);
	if (!err)
		err = put_u64s(a.bfns_ptr, bfns, a.pages);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	if (err) {
		idr_remove(&f->pins, id);
		goto out_unpin;
	}
	kvfree(pfns);
	kvfree(bfns);
	return 0;

out_unpin:
	unpin_user_pages(p->pages, p->npages);
out_free:
	kvfree(pfns);
	kvfree(bfns);
	kvfree(p->pages);
	kfree(p);
	return err;
}

/**
 * do_unpin() - DMAHIL_IOC_UNPIN: unpin a pin
 * @f: the open file
 * @arg: user pointer to the pin's u32 handle
 *
 * Context: dmahil_lock held.
 * Return: 0; -EFAULT if @arg cannot be read; -ENOENT if the handle is not a
 * pin of @f; -EBUSY if the pin still has mappings.
 */
static long do_unpin(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_pin_k *p;
	u32 id;

	if (copy_from_user(&id, arg, sizeof(id)))
		return -EFAULT;
	p = id ? idr_find(&f->pins, id) : NULL;
	if (!p)
		return -ENOENT;
	if (p->nmaps)
		return -EBUSY;
	idr_remove(&f->pins, id);
	pin_free(p);
	return 0;
}

/**
 * map_undo() - undo the DMA API mapping of a mapping
 * @m: the mapping
 * @nmapped: how many of its page segments are mapped (ignored for sg)
 * @attrs: DMA attributes of the unmap
 */
static void map_undo(struct dmahil_map_k *m, u32 nmapped, unsigned long attrs)
{
	u32 i;

	if (m->sg) {
		dma_unmap_sgtable(m->dev, &m->sgt, m->dir, attrs);
		return;
	}
	for (i = 0; i < nmapped; i++)
		dma_unmap_page_attrs(m->dev, m->bus[i], m->segs[i].length,
				     m->dir, attrs);
}

/**
 * map_free() - free a mapping (already unmapped) and drop its device
 * @m: the mapping; its sg table is freed if @m->sg
 */
static void map_free(struct dmahil_map_k *m)
{
	if (m->sg)
		sg_free_table(&m->sgt);
	kvfree(m->segs);
	kvfree(m->bus);
	put_device(m->dev);
	kfree(m);
}

/**
 * seg_write_safe() - whether the engine may write a segment
 * @dev: the engine, with the mapping's DMA mask set
 * @phys: the physical address of the segment's first byte
 * @len: its bytes, 1..4096 - xen_offset_in_page(@phys)
 * @addr: the bus address the segment reports (the XFER window)
 *
 * The one rule of the module's write fence (docs/architecture.md, Safety).
 * The expected address is computed here from the machine frame, never taken
 * from the DMA API under test: phys_to_dma() of pfn_to_bfn() of @phys's 4 KiB
 * frame plus the offset in it, as xen_phys_to_dma() in
 * drivers/xen/swiotlb-xen.c builds it (XEN_PFN_DOWN(), whatever PAGE_SIZE;
 * phys_to_dma() of include/linux/dma-direct.h adds the device's
 * dma-ranges offset).  A segment the DMA API bounced has another address, of
 * a slot the kernel chose: it is accepted when dma_to_phys() of its first and
 * last byte lie in the device's swiotlb pool (is_swiotlb_buffer(), as
 * is_xen_swiotlb_buffer() checks it).  Either way its last byte must be
 * within dma_capable()'s limit, min_not_zero(*@dev->dma_mask,
 * @dev->bus_dma_limit).
 *
 * Return: true if the engine may write [@addr, @addr + @len).
 */
static bool seg_write_safe(struct device *dev, phys_addr_t phys, u32 len,
			   dma_addr_t addr)
{
	phys_addr_t mach, first;
	u64 limit, last;

	if (!dev->dma_mask || !len ||
	    check_add_overflow((u64)addr, (u64)len - 1, &last))
		return false;
	limit = min_not_zero(*dev->dma_mask, dev->bus_dma_limit);
	if (last > limit)
		return false;
	mach = ((phys_addr_t)pfn_to_bfn(XEN_PFN_DOWN(phys)) << XEN_PAGE_SHIFT) +
	       xen_offset_in_page(phys);
	if (addr == phys_to_dma(dev, mach))
		return true;
	first = dma_to_phys(dev, addr);
	return is_swiotlb_buffer(dev, first) &&
	       is_swiotlb_buffer(dev, first + len - 1);
}

/**
 * seg_fill() - fill in one segment of a mapping
 * @m: the mapping
 * @i: the segment's index
 * @off: its first byte in the pin
 * @len: its bytes
 * @bus: the DMA API's address for it
 *
 * @pfn and @bfn are of the segment's 4 KiB frame (XEN_PFN_DOWN()).  Under
 * DMAHIL_FAULT_BYPASS the reported address is the segment's physical address
 * (page_to_phys() of its page plus the offset: the fault), not @bus.  The
 * reported address is then judged by seg_write_safe():
 * DMAHIL_SEG_WRITE_REFUSED if it fails.  A foreign segment whose bfn is
 * pfn_valid() in dom0 gets DMAHIL_SEG_BFN_PFN_VALID
 * (drivers/xen/swiotlb-xen.c then takes the local path).
 */
static void seg_fill(struct dmahil_map_k *m, u32 i, u64 off, u32 len,
		     dma_addr_t bus)
{
	struct dmahil_seg *s = &m->segs[i];
	struct page *page;
	phys_addr_t phys;
	u32 poff;

	phys = slot_phys(m->pin, off, &page, &poff);
	m->bus[i] = bus;
	s->offset = off;
	s->length = len;
	s->pfn = XEN_PFN_DOWN(phys);
	s->bfn = pfn_to_bfn(s->pfn);
	s->flags = s->pfn != s->bfn ? DMAHIL_SEG_FOREIGN : 0;
	if (m->faults & DMAHIL_FAULT_BYPASS) {
		s->dma_addr = phys;
	} else {
		s->dma_addr = bus;
		/*
		 * A slot of the swiotlb pool.  Not "bus is not the bfn's
		 * address": a dma-ranges offset or a kernel under test that
		 * hands out a wrong address is no bounce.
		 */
		if (is_swiotlb_buffer(m->dev, dma_to_phys(m->dev, bus)))
			s->flags |= DMAHIL_SEG_BOUNCED;
	}
	if (!seg_write_safe(m->dev, phys, len, s->dma_addr))
		s->flags |= DMAHIL_SEG_WRITE_REFUSED;
	/* swiotlb-xen's "local" test: pfn_valid() of the machine frame */
	if ((s->flags & DMAHIL_SEG_FOREIGN) &&
	    pfn_valid(PHYS_PFN((phys_addr_t)s->bfn << XEN_PAGE_SHIFT)))
		s->flags |= DMAHIL_SEG_BFN_PFN_VALID;
}

/**
 * map_dma_sg() - map a range of a pin with one dma_map_sgtable()
 * @m: the mapping (m->sg set)
 * @off: first byte in the pin
 * @len: bytes
 * @n: pages the range spans
 *
 * swiotlb-xen maps the table entry by entry.  On failure nothing is left
 * mapped or allocated and @m->sg is cleared.
 *
 * Return: 0 with @m->segs, @m->bus and @m->nsegs filled in; -ENOMEM if the
 * table cannot be allocated or the DMA API refused the mapping.
 */
static int map_dma_sg(struct dmahil_map_k *m, u64 off, u64 len, u32 n)
{
	struct scatterlist *sg;
	u64 pos = off, left = len;
	u32 i, poff, plen;
	struct page *page;
	int err;

	err = sg_alloc_table(&m->sgt, n, GFP_KERNEL);
	if (err) {
		m->sg = false;	/* nothing to free */
		return err;
	}
	for_each_sgtable_sg(&m->sgt, sg, i) {
		plen = min_t(u64, DMAHIL_PAGE - pos % DMAHIL_PAGE, left);
		slot_phys(m->pin, pos, &page, &poff);
		sg_set_page(sg, page, plen, poff);
		pos += plen;
		left -= plen;
	}
	err = dma_map_sgtable(m->dev, &m->sgt, m->dir, m->attrs);
	if (err) {
		sg_free_table(&m->sgt);
		m->sg = false;	/* nothing to free */
		return -ENOMEM;
	}
	pos = off;
	for_each_sgtable_dma_sg(&m->sgt, sg, i) {
		seg_fill(m, i, pos, sg_dma_len(sg), sg_dma_address(sg));
		pos += sg_dma_len(sg);
	}
	m->nsegs = m->sgt.nents;
	return 0;
}

/**
 * map_dma() - map a range of a pin for the engine
 * @m: the mapping (pin, dev, dir, attrs, faults and sg set)
 * @off: first byte in the pin
 * @len: bytes
 * @n: 4 KiB pages the range spans: one dma_map_page_attrs() each, or one sg
 *	entry each
 *
 * On failure nothing is left mapped.
 *
 * Return: 0 with @m->segs, @m->bus and @m->nsegs filled in; -ENOMEM if the
 * DMA API refused a page (swiotlb full, address not reachable under the
 * mask) or, for sg, see map_dma_sg().
 */
static int map_dma(struct dmahil_map_k *m, u64 off, u64 len, u32 n)
{
	u64 pos = off, left = len;
	u32 i, poff, plen;
	dma_addr_t bus;
	struct page *page;

	if (m->sg)
		return map_dma_sg(m, off, len, n);
	for (i = 0; i < n; i++) {
		plen = min_t(u64, DMAHIL_PAGE - pos % DMAHIL_PAGE, left);
		slot_phys(m->pin, pos, &page, &poff);
		bus = dma_map_page_attrs(m->dev, page, poff, plen, m->dir,
					 m->attrs);
		if (dma_mapping_error(m->dev, bus)) {
			map_undo(m, i, m->attrs | DMA_ATTR_SKIP_CPU_SYNC);
			return -ENOMEM;
		}
		seg_fill(m, i, pos, plen, bus);
		pos += plen;
		left -= plen;
	}
	m->nsegs = n;
	return 0;
}

/**
 * misaddressed_sync() - the DMAHIL_FAULT_SYNC_MISADDRESS sync
 * @m: the mapping
 * @for_device: true: dma_sync_single_for_device(); false: ..._for_cpu()
 *
 * Syncs each segment one 4 KiB page past its bus address.
 */
static void misaddressed_sync(struct dmahil_map_k *m, bool for_device)
{
	u32 i;

	for (i = 0; i < m->nsegs; i++) {
		if (for_device)
			dma_sync_single_for_device(m->dev,
						   m->bus[i] + DMAHIL_PAGE,
						   m->segs[i].length, m->dir);
		else
			dma_sync_single_for_cpu(m->dev, m->bus[i] + DMAHIL_PAGE,
						m->segs[i].length, m->dir);
	}
}

/**
 * range_has_foreign() - whether a range of a pin holds a foreign page
 * @p: the pin
 * @off: first byte
 * @len: bytes, > 0
 *
 * Return: true if a 4 KiB page of [@off, @off + @len) has pfn != bfn.
 */
static bool range_has_foreign(const struct dmahil_pin_k *p, u64 off, u64 len)
{
	unsigned long pfn;
	struct page *page;
	u32 poff;
	u64 i;

	for (i = off / DMAHIL_PAGE; i <= (off + len - 1) / DMAHIL_PAGE; i++) {
		pfn = XEN_PFN_DOWN(slot_phys(p, i * DMAHIL_PAGE, &page, &poff));
		if (pfn_to_bfn(pfn) != pfn)
			return true;
	}
	return false;
}

/**
 * map_check() - check a struct dmahil_map from the user and find its pin
 * @f: the open file
 * @a: the request
 * @pin: out: the pin
 * @npages: out: 4 KiB pages the range spans
 *
 * Return: 0; -EINVAL if @a->ops is bad (see ops_check()), @a->direction is
 * not a DMAHIL_DMA_*, @a->sg is not 0 or 1, @a->length is 0, the range
 * overflows or ends past the pin, @a->mask_bits is not 0 or 32..64, or
 * @a->nsegs is below the pages spanned or @a->segs_ptr is 0; -ENOENT if
 * @a->pin is not a pin of @f.
 */
static int map_check(struct dmahil_file *f, const struct dmahil_map *a,
		     struct dmahil_pin_k **pin, u32 *npages)
{
	struct dmahil_pin_k *p;
	u64 end;
	int err;

	err = ops_check(&a->ops);
	if (err)
		return err;
	if (a->direction > DMAHIL_DMA_FROM_DEVICE || a->sg > 1 || !a->length ||
	    check_add_overflow(a->offset, a->length, &end) ||
	    (a->mask_bits && (a->mask_bits < 32 || a->mask_bits > 64)))
		return -EINVAL;
	p = a->pin ? idr_find(&f->pins, a->pin) : NULL;
	if (!p)
		return -ENOENT;
	if (end > (u64)p->nslots * DMAHIL_PAGE)
		return -EINVAL;
	*npages = (end - 1) / DMAHIL_PAGE - a->offset / DMAHIL_PAGE + 1;
	if (a->nsegs < *npages || !a->segs_ptr)
		return -EINVAL;
	*pin = p;
	return 0;
}

/**
 * map_alloc() - allocate a mapping of a pin
 * @p: the pin
 * @dev: the engine; referenced for the mapping's life
 * @a: the request (checked)
 * @n: 4 KiB pages the range spans
 *
 * Takes the fault switches (none if the range holds no foreign page) and the
 * DMA attributes they imply.
 *
 * Return: the mapping, or NULL if out of memory.
 */
static struct dmahil_map_k *map_alloc(struct dmahil_pin_k *p,
				      struct device *dev,
				      const struct dmahil_map *a, u32 n)
{
	struct dmahil_map_k *m;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return NULL;
	m->segs = kvcalloc(n, sizeof(*m->segs), GFP_KERNEL);
	m->bus = kvcalloc(n, sizeof(*m->bus), GFP_KERNEL);
	if (!m->segs || !m->bus) {
		kvfree(m->segs);
		kvfree(m->bus);
		kfree(m);
		return NULL;
	}
	m->pin = p;
	m->dev = get_device(dev);
	m->dir = (enum dma_data_direction)a->direction;
	m->sg = a->sg;
	m->faults = dmahil_faults();
	if (!range_has_foreign(p, a->offset, a->length))
		m->faults = 0;
	if (m->faults &
	    (DMAHIL_FAULT_SKIP_CPU_SYNC | DMAHIL_FAULT_SYNC_MISADDRESS))
		m->attrs = DMA_ATTR_SKIP_CPU_SYNC;
	if (m->faults & DMAHIL_FAULT_SKIP_CPU_SYNC)
		m->unmap_attrs = DMA_ATTR_SKIP_CPU_SYNC;
	if ((m->faults & DMAHIL_FAULT_NO_COPY_BACK) && m->dir != DMA_TO_DEVICE)
		m->unmap_attrs = DMA_ATTR_SKIP_CPU_SYNC;
	return m;
}

/**
 * do_map() - DMAHIL_IOC_MAP: map part of a pin for the engine
 * @f: the open file
 * @arg: user pointer to struct dmahil_map
 *
 * Sets the engine's DMA mask (@arg->mask_bits, or dma_bits if 0), maps the
 * range with the DMA API and reports its segments and the maintenance the
 * map issued.
 *
 * Context: dmahil_lock held.
 * Return: 0 with @arg->mapping, @arg->nsegs and @arg->ops set; -EFAULT if
 * @arg, @arg->segs_ptr or @arg->ops.ptr cannot be read or written (the
 * mapping is undone); -EINVAL if an argument is bad (see map_check()) or
 * dma_set_mask_and_coherent() refused the mask; -ENOENT if @arg->pin is not
 * a pin of @f; -ENODEV if no engine is bound; -ENOMEM if out of memory or
 * the DMA API refused the mapping (swiotlb full, address not reachable
 * under the mask); -ENOSPC if the file holds DMAHIL_MAX_HANDLES mappings.
 */
static long do_map(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_map a;
	struct dmahil_map_k *m;
	struct dmahil_pin_k *p;
	struct device *dev;
	u32 n, bits;
	int err, ops_err, id;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	err = map_check(f, &a, &p, &n);
	if (err)
		return err;
	dev = dmahil_edu_dev();
	if (!dev)
		return -ENODEV;
	/* mask_bits 0: the device's own, so an earlier mask never lingers */
	bits = a.mask_bits ? a.mask_bits : dmahil_edu_dma_bits();
	if (dma_set_mask_and_coherent(dev, DMA_BIT_MASK(bits))) {
		dev_err(dev, "dmahil: dma_set_mask_and_coherent(%u bits) refused\n",
			a.mask_bits);
		return -EINVAL;
	}
	m = map_alloc(p, dev, &a, n);
	if (!m)
		return -ENOMEM;

	dmahil_audit_begin(a.ops.cap);
	err = map_dma(m, a.offset, a.length, n);
	if (!err && (m->faults & DMAHIL_FAULT_SYNC_MISADDRESS))
		misaddressed_sync(m, true);
	ops_err = ops_finish(&a.ops);
	if (err)
		goto out_unmapped;
	if (ops_err) {
		err = ops_err;
		goto out_unmap;
	}

	id = idr_alloc(&f->maps, m, 1, DMAHIL_MAX_HANDLES + 1, GFP_KERNEL);
	if (id < 0) {
		err = id;
		goto out_unmap;
	}
	m->id = id;
	a.mapping = id;
	a.nsegs = m->nsegs;
	if (copy_to_user(u64_to_user_ptr(a.segs_ptr), m->segs,
			 m->nsegs * sizeof(*m->segs)) ||
	    copy_to_user(arg, &a, sizeof(a))) {
		idr_remove(&f->maps, id);
		err = -EFAULT;
		goto out_unmap;
	}
	p->nmaps++;
	return 0;

out_unmap:
	map_undo(m, m->nsegs, m->attrs | DMA_ATTR_SKIP_CPU_SYNC);
	map_free(m);	/* frees the sg table */
	return err;

out_unmapped:	/* map_dma() failed and cleaned up after itself */
	if (err == -ENOMEM)
		dev_info(dev,
			 "dmahil: DMA mapping of %llu bytes failed (swiotlb full or mask too small?)\n",
			 a.length);
	m->sg = false;
	map_free(m);
	return err;
}

/**
 * do_sync() - DMAHIL_IOC_SYNC: sync a mapping for the CPU or the device
 * @f: the open file
 * @arg: user pointer to struct dmahil_sync
 *
 * Under DMAHIL_FAULT_SYNC_MISADDRESS the sync is misaddressed (see
 * misaddressed_sync()).
 *
 * Context: dmahil_lock held.
 * Return: 0 with @arg->ops set; -EFAULT if @arg or @arg->ops.ptr cannot be
 * read or written; -EINVAL if @arg->ops is bad or @arg->for_ is not a
 * DMAHIL_SYNC_*; -ENOENT if @arg->mapping is not a mapping of @f.
 */
static long do_sync(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_sync a;
	struct dmahil_map_k *m;
	bool for_device;
	u32 i;
	int err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	err = ops_check(&a.ops);
	if (err)
		return err;
	if (a.for_ != DMAHIL_SYNC_FOR_CPU && a.for_ != DMAHIL_SYNC_FOR_DEVICE)
		return -EINVAL;
	m = a.mapping ? idr_find(&f->maps, a.mapping) : NULL;
	if (!m)
		return -ENOENT;
	for_device = a.for_ == DMAHIL_SYNC_FOR_DEVICE;

	dmahil_audit_begin(a.ops.cap);
	if (m->faults & DMAHIL_FAULT_SYNC_MISADDRESS) {
		misaddressed_sync(m, for_device);
	} else if (m->sg) {
		if (for_device)
			dma_sync_sgtable_for_device(m->dev, &m->sgt, m->dir);
		else
			dma_sync_sgtable_for_cpu(m->dev, &m->sgt, m->dir);
	} else {
		for (i = 0; i < m->nsegs; i++) {
			if (for_device)
				dma_sync_single_for_device(m->dev, m->bus[i],
							   m->segs[i].length,
							   m->dir);
			else
				dma_sync_single_for_cpu(m->dev, m->bus[i],
							m->segs[i].length,
							m->dir);
		}
	}
	err = ops_finish(&a.ops);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

/**
 * map_destroy() - unmap and free a mapping
 * @f: the open file that holds it
 * @m: the mapping
 *
 * The maintenance the unmap issues is the caller's to record.
 */
static void map_destroy(struct dmahil_file *f, struct dmahil_map_k *m)
{
	idr_remove(&f->maps, m->id);
	map_undo(m, m->nsegs, m->unmap_attrs);
	m->pin->nmaps--;
	map_free(m);
}

/**
 * do_unmap() - DMAHIL_IOC_UNMAP: unmap a mapping
 * @f: the open file
 * @arg: user pointer to struct dmahil_unmap
 *
 * Context: dmahil_lock held.
 * Return: 0 with @arg->ops set; -EFAULT if @arg or @arg->ops.ptr cannot be
 * read or written (the mapping is gone even then); -EINVAL if @arg->ops is
 * bad or @arg->pad is not zero; -ENOENT if @arg->mapping is not a mapping of
 * @f.
 */
static long do_unmap(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_unmap a;
	struct dmahil_map_k *m;
	int err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	err = ops_check(&a.ops);
	if (err)
		return err;
	if (a.pad)
		return -EINVAL;
	m = a.mapping ? idr_find(&f->maps, a.mapping) : NULL;
	if (!m)
		return -ENOENT;
	dmahil_audit_begin(a.ops.cap);
	map_destroy(f, m);
	err = ops_finish(&a.ops);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

/**
 * in_window() - whether the engine may do a transfer
 * @f: the open file
 * @addr: bus address
 * @len: bytes
 * @op: DMAHIL_XFER_*
 *
 * A segment marked DMAHIL_SEG_WRITE_REFUSED (see seg_write_safe()) may be
 * read (what a wrong address does: the device reads the wrong memory) but
 * never written, so a kernel under test, or a DMAHIL_FAULT_* switch such as
 * BYPASS (a foreign page's ballooned pfn, whose machine frame Xen took
 * back), cannot make the engine corrupt dom0, Xen or another domain.
 *
 * Return: true if [@addr, @addr + @len) lies inside one segment (as
 * reported) of a live mapping of @f and @op is allowed in such a segment.
 */
static bool in_window(struct dmahil_file *f, u64 addr, u32 len, u32 op)
{
	struct dmahil_map_k *m;
	struct dmahil_seg *s;
	int id;
	u32 i;

	idr_for_each_entry(&f->maps, m, id) {
		for (i = 0; i < m->nsegs; i++) {
			s = &m->segs[i];
			if (addr < s->dma_addr ||
			    addr - s->dma_addr > s->length ||
			    len > s->length - (addr - s->dma_addr))
				continue;
			if (op != DMAHIL_XFER_WRITE ||
			    !(s->flags & DMAHIL_SEG_WRITE_REFUSED))
				return true;
		}
	}
	return false;
}

/**
 * do_xfer() - DMAHIL_IOC_XFER: an engine transfer inside a mapping
 * @f: the open file
 * @arg: user pointer to struct dmahil_xfer
 *
 * Context: dmahil_lock held.
 * Return: 0; -EFAULT if @arg or @arg->uaddr cannot be read or written;
 * -EINVAL if @arg->op is not a DMAHIL_XFER_*, @arg->length is 0 or above
 * DMAHIL_MAX_XFER_BYTES, @arg->uaddr is 0 or the range overflows; -ENODEV if
 * no engine is bound; -EACCES if the range is not inside one segment of a
 * live mapping of @f, or is a write and every such segment is marked
 * DMAHIL_SEG_WRITE_REFUSED (see in_window()); -EIO if the engine is wedged,
 * refused a DMA or timed out.
 */
static long do_xfer(struct dmahil_file *f, void __user *arg)
{
	struct dmahil_xfer a;
	u64 end;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if ((a.op != DMAHIL_XFER_READ && a.op != DMAHIL_XFER_WRITE) ||
	    !a.length || a.length > DMAHIL_MAX_XFER_BYTES || !a.uaddr ||
	    check_add_overflow(a.dma_addr, (u64)a.length, &end))
		return -EINVAL;
	if (!dmahil_edu_dev())
		return -ENODEV;
	if (!in_window(f, a.dma_addr, a.length, a.op))
		return -EACCES;
	return dmahil_edu_xfer(a.dma_addr, u64_to_user_ptr(a.uaddr), a.length,
			       a.op);
}

/**
 * dmahil_open() - open /dev/dmahil
 * @inode: the device's inode
 * @file: the new file
 *
 * Return: 0, or -ENOMEM.
 */
static int dmahil_open(struct inode *inode, struct file *file)
{
	struct dmahil_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	idr_init(&f->pins);
	idr_init(&f->maps);
	file->private_data = f;
	return 0;
}

/**
 * dmahil_release() - close /dev/dmahil: unmap every mapping, unpin every pin
 * @inode: the device's inode
 * @file: the file
 *
 * Return: 0.
 */
static int dmahil_release(struct inode *inode, struct file *file)
{
	struct dmahil_file *f = file->private_data;
	struct dmahil_map_k *m;
	struct dmahil_pin_k *p;
	int id;

	mutex_lock(&dmahil_lock);
	dmahil_dev_audit_release(f);
	idr_for_each_entry(&f->maps, m, id)
		map_destroy(f, m);
	idr_for_each_entry(&f->pins, p, id)
		pin_free(p);
	mutex_unlock(&dmahil_lock);
	idr_destroy(&f->maps);
	idr_destroy(&f->pins);
	kfree(f);
	return 0;
}

/**
 * dmahil_ioctl() - the ioctls of /dev/dmahil, under dmahil_lock
 * @file: the file
 * @cmd: DMAHIL_IOC_*
 * @arg: user pointer to the command's struct
 *
 * Return: the result of do_info(), do_pin(), do_unpin(), do_map(),
 * do_sync(), do_unmap(), do_xfer(), dmahil_dev_watch() or
 * dmahil_dev_watch_read(); -ENOTTY for an unknown @cmd.
 */
static long dmahil_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct dmahil_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	mutex_lock(&dmahil_lock);
	switch (cmd) {
	case DMAHIL_IOC_INFO:
		ret = do_info(uarg);
		break;
	case DMAHIL_IOC_PIN:
		ret = do_pin(f, uarg);
		break;
	case DMAHIL_IOC_UNPIN:
		ret = do_unpin(f, uarg);
		break;
	case DMAHIL_IOC_MAP:
		ret = do_map(f, uarg);
		break;
	case DMAHIL_IOC_SYNC:
		ret = do_sync(f, uarg);
		break;
	case DMAHIL_IOC_UNMAP:
		ret = do_unmap(f, uarg);
		break;
	case DMAHIL_IOC_XFER:
		ret = do_xfer(f, uarg);
		break;
	case DMAHIL_IOC_WATCH:
		ret = dmahil_dev_watch(f, uarg);
		break;
	case DMAHIL_IOC_WATCH_READ:
		ret = dmahil_dev_watch_read(f, uarg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&dmahil_lock);
	return ret;
}

static const struct file_operations dmahil_fops = {
	.owner = THIS_MODULE,
	.open = dmahil_open,
	.release = dmahil_release,
	.unlocked_ioctl = dmahil_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice dmahil_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dmahil",
	.fops = &dmahil_fops,
	.mode = 0600,
};

/**
 * dmahil_init() - load: arm the audit, register the edu driver, then
 * /dev/dmahil
 *
 * Return: 0, or the error of pci_register_driver() or misc_register().
 */
static int __init dmahil_init(void)
{
	int err;

	BUILD_BUG_ON(PAGE_SIZE % DMAHIL_PAGE || DMAHIL_PAGE != XEN_PAGE_SIZE);
	dmahil_audit_init();
	dmahil_dev_audit_init();
	err = dmahil_edu_register();
	if (err) {
		pr_err("dmahil: pci_register_driver failed (%d)\n", err);
		goto out_audit;
	}
	err = misc_register(&dmahil_misc);
	if (err) {
		pr_err("dmahil: misc_register(%s) failed (%d)\n",
		       DMAHIL_DEVICE_PATH, err);
		goto out_edu;
	}
	pr_info("dmahil: %s ready (ABI %u, PAGE_SIZE %lu, faults %#x, engine %s)\n",
		DMAHIL_DEVICE_PATH, DMAHIL_ABI_VERSION, PAGE_SIZE, faults,
		dmahil_edu_dev() ? "bound" : "not bound");
	return 0;

out_edu:
	dmahil_edu_unregister();
out_audit:
	dmahil_audit_exit();
	dmahil_dev_audit_exit();
	return err;
}

/**
 * dmahil_exit() - unload: the reverse of dmahil_init()
 */
static void __exit dmahil_exit(void)
{
	misc_deregister(&dmahil_misc);
	dmahil_edu_unregister();
	dmahil_audit_exit();
	dmahil_dev_audit_exit();
}

module_init(dmahil_init);
module_exit(dmahil_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dmahil: DMA API on (foreign) pages with QEMU's edu as engine, and a cache-maintenance audit");
MODULE_AUTHOR("dmahil");
