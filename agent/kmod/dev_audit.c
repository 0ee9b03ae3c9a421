// SPDX-License-Identifier: GPL-2.0
/*
 * The DMA-API audit of a real device: what the kernel did when a real driver
 * (nvme, an SD/eMMC host, ahci) mapped pages for its device, foreign pages of
 * a domU included (xen-blkback submits them).
 *
 * DMAHIL_IOC_WATCH copies the struct dma_map_ops the kernel installed for the
 * device (get_dma_ops(); under Xen on Arm xen_swiotlb_dma_ops, set by
 * xen_setup_dma_ops() in include/xen/arm/swiotlb-xen.h) and installs the
 * copy with set_dma_ops(), its streaming ops replaced by wrappers.  Each
 * wrapper forwards the call unchanged to the original op and records it:
 * for a map, the dma_addr_t the kernel returned next to the pfn, the bfn and
 * the bus address the module computes itself (phys_to_dma() of the machine
 * address).  The wrapper also sets a per-CPU marker (dev_call) around the
 * forwarded call, with preemption off, so that the kprobes of audit.c
 * attribute the cache maintenance the kernel issues inside it to that call
 * in any context: drivers map in kthreads and workqueues and unmap in
 * interrupt handlers, and an interrupt that nests a watched call saves and
 * restores the marker.  What the maintenance was is what the kprobes saw the
 * kernel do, never the wrapper's guess.
 *
 * Records go to a ring of DMAHIL_DEV_RECORDS (dmahil_uapi.h), lost when it
 * is full (counted), drained by DMAHIL_IOC_WATCH_READ.
 *
 * With a DMAHIL_FAULT_* bit set (the module's faults parameter, read at
 * each call) the wrappers change what they forward for the mappings of
 * foreign pages, as dmahil_uapi.h describes: the catalogue's bug classes in
 * the real driver's traffic.  The maintenance the kernel then issues, or
 * does not, is still what the kprobes see; a changed bus address is what
 * the driver got and is recorded as such.  Each mapping a bit acts on is
 * kept in a table (DMAHIL_DEV_FAULTED entries) until its unmap, which needs
 * the real address or the skipped sync back; with the table full, a new
 * mapping is left alone.
 *
 * Unwatching puts the original ops back, then waits for an RCU grace period
 * and for every wrapper still running to return.  The wrappers never lose
 * the original ops (w.orig stays set), so a caller that read the copy just
 * before it was removed still reaches the real op.
 */
#include <linux/atomic.h>
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/minmax.h>
#include <linux/of.h>
#include <linux/of_platform.h>
#include <linux/pci.h>
#include <linux/percpu.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/swiotlb.h>
#include <linux/uaccess.h>
#include <linux/wait_bit.h>
#include <xen/page.h>

#include "dmahil.h"

/**
 * struct dmahil_watched - the watched device and its records
 * @lock: protects @buf, @head, @count, @dropped; taken in any context
 * @dev: the watched device (a reference held), or NULL
 * @owner: the file that started the watch
 * @orig: the device's original ops; kept after the watch ends
 * @wrap: the copy of @orig installed on @dev (memory for one ops struct,
 *	allocated at load, freed at unload)
 * @buf: DMAHIL_DEV_RECORDS records, or NULL if the allocation failed
 * @head: index of the oldest record
 * @count: records in @buf
 * @dropped: records lost since the last read
 * @calls: the last call number handed out
 * @inflight: wrappers running
 * @recording: records are taken
 * @direct: @dev has no DMA-mapping ops: nothing is installed
 */
struct dmahil_watched {
	spinlock_t lock; /* see the kernel-doc above */
	struct device *dev;
	const void *owner;
	const struct dma_map_ops *orig;
	void *wrap; /* the ops copy: written by each watch, so not const */
	struct dmahil_dev_op *buf;
	u32 head;
	u32 count;
	u32 dropped;
	atomic64_t calls;
	atomic_t inflight;
	bool recording;
	bool direct;
};

static struct dmahil_watched w = {
	.lock = __SPIN_LOCK_UNLOCKED(w.lock),
};

/* the watched call whose maintenance this CPU records, or 0 */
static DEFINE_PER_CPU(u64, dev_call);

/* mappings a DMAHIL_FAULT_* bit acts on, live at once */
#define DMAHIL_DEV_FAULTED 4096u

/**
 * struct dmahil_faulted - a live mapping a DMAHIL_FAULT_* bit acts on
 * @addr: the dma_addr_t the driver got
 * @real: the one the original op returned
 * @fault: the DMAHIL_FAULT_* bit; 0 for a free entry
 */
struct dmahil_faulted {
	dma_addr_t addr;
	dma_addr_t real;
	u32 fault;
};

/* DMAHIL_DEV_FAULTED entries, allocated at load; under faulted_lock */
static struct dmahil_faulted *faulted;
static DEFINE_SPINLOCK(faulted_lock);
/* entries of faulted in use */
static atomic_t faulted_live = ATOMIC_INIT(0);

/**
 * push() - append a record to the ring, or count it lost
 * @r: the record
 *
 * Context: any; takes w.lock with interrupts off.
 */
static void push(const struct dmahil_dev_op *r)
{
	unsigned long flags;

	spin_lock_irqsave(&w.lock, flags);
	/* not recording: a caller that raced the unwatch */
	if (w.recording && w.buf) {
		if (w.count < DMAHIL_DEV_RECORDS) {
			w.buf[(w.head + w.count) % DMAHIL_DEV_RECORDS] = *r;
			w.count++;
		} else {
			w.dropped++;
		}
	}
	spin_unlock_irqrestore(&w.lock, flags);
}

/**
 * call_begin() - start a watched call on this CPU
 * @prev: out: the marker to restore (an interrupted watched call's, or 0)
 *
 * Disables preemption until call_end(): the marker is per CPU.
 *
 * Return: the call's number.
 */
static u64 call_begin(u64 *prev)
{
	u64 call = (u64)atomic64_inc_return(&w.calls);

	atomic_inc(&w.inflight);
	preempt_disable();
	*prev = this_cpu_read(dev_call);
	this_cpu_write(dev_call, call);
	return call;
}

/**
 * call_marker_end() - the forwarded op returned: stop attributing
 * @prev: what call_begin() returned in its @prev
 */
static void call_marker_end(u64 prev)
{
	this_cpu_write(dev_call, prev);
	preempt_enable();
}

/**
 * call_end() - the wrapper is done with every shared state
 */
static void call_end(void)
{
	if (atomic_dec_and_test(&w.inflight))
		wake_up_var(&w.inflight);
}

/**
 * dmahil_dev_call_active() - whether this CPU is inside a watched call
 *
 * Context: preemption off (a kprobe handler).
 * Return: true if maintenance issued now belongs to a watched call.
 */
bool dmahil_dev_call_active(void)
{
	return this_cpu_read(dev_call) != 0;
}

/**
 * dmahil_dev_audit_maint() - record maintenance issued inside a watched call
 * @addr: machine (DMAHIL_OP_HYPERCALL) or physical (DMAHIL_OP_ARCH_SYNC)
 *	address
 * @length: bytes (saturated to U32_MAX)
 * @op: DMAHIL_CACHE_*
 * @kind: DMAHIL_OP_*
 *
 * Called by the kprobe handlers of audit.c for every maintenance operation
 * they see; records it only if this CPU is inside a watched call.
 *
 * Context: a kprobe handler (preemption off).
 */
void dmahil_dev_audit_maint(u64 addr, u64 length, u32 op, u32 kind)
{
	struct dmahil_dev_op r = {};

	r.call = this_cpu_read(dev_call);
	if (!r.call)
		return;
	r.op = DMAHIL_DEV_MAINT;
	r.dma_addr = addr;
	r.length = (u32)min_t(u64, length, U32_MAX);
	r.dir = op;
	r.flags = kind;
	push(&r);
}

/**
 * push_map() - record one mapped range
 * @call: its call
 * @dev: the device
 * @phys: physical address of its first byte
 * @addr: the dma_addr_t the kernel returned for it
 * @size: bytes
 * @dir: its direction
 *
 * @expected is phys_to_dma() of the first byte's machine address
 * (pfn_to_bfn() of its 4 KiB frame plus the offset in it), as
 * xen_phys_to_dma() in drivers/xen/swiotlb-xen.c builds it.
 */
static void push_map(u64 call, struct device *dev, phys_addr_t phys,
		     dma_addr_t addr, size_t size,
		     enum dma_data_direction dir)
{
	struct dmahil_dev_op r = {};
	phys_addr_t mach;

	r.call = call;
	r.op = DMAHIL_DEV_MAP;
	r.dma_addr = addr;
	r.length = (u32)min_t(size_t, size, U32_MAX);
	r.dir = dir;
	r.pfn = XEN_PFN_DOWN(phys);
	r.bfn = pfn_to_bfn(r.pfn);
	mach = (phys_addr_t)r.bfn << XEN_PAGE_SHIFT;
	r.expected = phys_to_dma(dev, mach + xen_offset_in_page(phys));
	if (r.pfn != r.bfn)
		r.flags |= DMAHIL_SEG_FOREIGN;
	if (is_swiotlb_buffer(dev, dma_to_phys(dev, addr)))
		r.flags |= DMAHIL_SEG_BOUNCED;
	if ((r.flags & DMAHIL_SEG_FOREIGN) &&
	    pfn_valid(PHYS_PFN((phys_addr_t)r.bfn << XEN_PAGE_SHIFT)))
		r.flags |= DMAHIL_SEG_BFN_PFN_VALID;
	push(&r);
}

/**
 * push_op() - record an unmap or sync of one range
 * @call: its call
 * @op: DMAHIL_DEV_UNMAP or DMAHIL_DEV_SYNC_*
 * @addr: the dma_addr_t the driver passed
 * @size: bytes
 * @dir: its direction
 */
static void push_op(u64 call, u32 op, dma_addr_t addr, size_t size,
		    enum dma_data_direction dir)
{
	struct dmahil_dev_op r = {};

	r.call = call;
	r.op = op;
	r.dma_addr = addr;
	r.length = (u32)min_t(size_t, size, U32_MAX);
	r.dir = dir;
	push(&r);
}

/**
 * push_sg() - record an unmap or sync of each entry of a scatterlist
 * @call: its call
 * @op: DMAHIL_DEV_UNMAP or DMAHIL_DEV_SYNC_*
 * @sgl: the list the driver passed
 * @nents: its entries
 * @dir: their direction
 */
static void push_sg(u64 call, u32 op, struct scatterlist *sgl, int nents,
		    enum dma_data_direction dir)
{
	struct scatterlist *s;
	int i;

	for_each_sg(sgl, s, nents, i)
		push_op(call, op, sg_dma_address(s), sg_dma_len(s), dir);
}

/**
 * frame_foreign() - whether a physical range holds a foreign 4 KiB frame
 * @phys: first byte
 * @size: bytes, > 0
 *
 * Return: true if pfn_to_bfn() differs from the pfn for one of its frames.
 */
static bool frame_foreign(phys_addr_t phys, size_t size)
{
	unsigned long pfn;

	for (pfn = XEN_PFN_DOWN(phys); pfn <= XEN_PFN_DOWN(phys + size - 1);
	     pfn++)
		if (pfn_to_bfn(pfn) != pfn)
			return true;
	return false;
}

/**
 * map_fault() - the DMAHIL_FAULT_* bit a new mapping gets after its map
 * @dev: the device
 * @phys: physical address of its first byte
 * @addr: the dma_addr_t the original op returned
 * @size: bytes
 * @dir: its direction
 * @attrs: the driver's attributes
 *
 * SYNC_MISADDRESS acts inside the map itself (misaddress_map()).
 *
 * Return: BYPASS, SKIP_CPU_SYNC, NO_COPY_BACK or 0.
 */
static u32 map_fault(struct device *dev, phys_addr_t phys, dma_addr_t addr,
		     size_t size, enum dma_data_direction dir,
		     unsigned long attrs)
{
	u32 f = dmahil_faults();
	bool bounced;

	if (!f || !frame_foreign(phys, size))
		return 0;
	bounced = is_swiotlb_buffer(dev, dma_to_phys(dev, addr));
	if (dir == DMA_TO_DEVICE)
		return !bounced && (f & DMAHIL_FAULT_BYPASS) ?
			DMAHIL_FAULT_BYPASS : 0;
	/* the driver syncs for itself: nothing to skip */
	if (attrs & DMA_ATTR_SKIP_CPU_SYNC)
		return 0;
	if (bounced)
		return f & DMAHIL_FAULT_NO_COPY_BACK;
	return f & DMAHIL_FAULT_SKIP_CPU_SYNC;
}

/**
 * fault_add() - give the driver a mapping's faulty address and keep it
 * @dev: the device
 * @phys: physical address of its first byte
 * @addr: the dma_addr_t the original op returned
 * @size: bytes
 * @dir: its direction
 * @attrs: the driver's attributes
 *
 * Context: any; takes faulted_lock with interrupts off.
 * Return: the dma_addr_t for the driver: phys_to_dma() of @phys under
 * BYPASS (the dma-direct address), else @addr.
 */
static dma_addr_t fault_add(struct device *dev, phys_addr_t phys,
			    dma_addr_t addr, size_t size,
			    enum dma_data_direction dir, unsigned long attrs)
{
	u32 fault = map_fault(dev, phys, addr, size, dir, attrs);
	dma_addr_t out = addr;
	unsigned long flags;
	u32 i;

	if (!fault || !faulted)
		return addr;
	if (fault == DMAHIL_FAULT_BYPASS)
		out = phys_to_dma(dev, phys);
	spin_lock_irqsave(&faulted_lock, flags);
	for (i = 0; i < DMAHIL_DEV_FAULTED; i++) {
		if (faulted[i].fault)
			continue;
		faulted[i].addr = out;
		faulted[i].real = addr;
		faulted[i].fault = fault;
		atomic_inc(&faulted_live);
		break;
	}
	spin_unlock_irqrestore(&faulted_lock, flags);
	/* table full: left alone, the driver gets the real address */
	return i < DMAHIL_DEV_FAULTED ? out : addr;
}

/**
 * fault_find() - the real address of an address the driver passes
 * @addr: the driver's dma_addr_t
 * @fault: out: the entry's DMAHIL_FAULT_* bit, 0 if none
 * @drop: free the entry (an unmap)
 *
 * Context: any; takes faulted_lock with interrupts off.
 * Return: the address to forward: the entry's real one, or @addr.
 */
static dma_addr_t fault_find(dma_addr_t addr, u32 *fault, bool drop)
{
	dma_addr_t real = addr;
	unsigned long flags;
	u32 i;

	*fault = 0;
	if (!faulted || !atomic_read(&faulted_live))
		return addr;
	spin_lock_irqsave(&faulted_lock, flags);
	for (i = 0; i < DMAHIL_DEV_FAULTED; i++) {
		if (!faulted[i].fault || faulted[i].addr != addr)
			continue;
		real = faulted[i].real;
		*fault = faulted[i].fault;
		if (drop) {
			faulted[i].fault = 0;
			atomic_dec(&faulted_live);
		}
		break;
	}
	spin_unlock_irqrestore(&faulted_lock, flags);
	return real;
}

/**
 * misaddress_map() - whether SYNC_MISADDRESS may act on a map about to be made
 * @dev: the device
 * @attrs: the driver's attributes
 *
 * Cheap: the caller then looks for a foreign frame (frame_foreign()) only
 * if this is true, so a watch without the fault adds no p2m lookup to a map.
 *
 * Return: true if a map holding a foreign frame must be forwarded with
 * DMA_ATTR_SKIP_CPU_SYNC and its for-device sync issued by
 * misaddressed_sync().
 */
static bool misaddress_map(struct device *dev, unsigned long attrs)
{
	return (dmahil_faults() & DMAHIL_FAULT_SYNC_MISADDRESS) &&
	       !(attrs & DMA_ATTR_SKIP_CPU_SYNC) && !dev_is_dma_coherent(dev) &&
	       w.orig->sync_single_for_device;
}

/**
 * misaddressed_sync() - the for-device sync of a range mapped without one
 * @dev: the device
 * @phys: physical address of its first byte
 * @addr: its dma_addr_t
 * @size: bytes
 * @dir: its direction
 *
 * A foreign range not bounced is synced one 4 KiB page past @addr (the
 * cache-flush-local-addr class); anything else at @addr, as the map
 * would have (a bounce buffer gets its data copied in).
 */
static void misaddressed_sync(struct device *dev, phys_addr_t phys,
			      dma_addr_t addr, size_t size,
			      enum dma_data_direction dir)
{
	if (frame_foreign(phys, size) &&
	    !is_swiotlb_buffer(dev, dma_to_phys(dev, addr)))
		addr += XEN_PAGE_SIZE;
	w.orig->sync_single_for_device(dev, addr, size, dir);
}

/*
 * The wrappers: each forwards to the same op of w.orig with the same
 * arguments (but for what a DMAHIL_FAULT_* bit changes) and returns its
 * result, inside call_begin()/call_marker_end() so that the maintenance
 * issued meanwhile is recorded with the call, then records what was mapped,
 * unmapped or synced, at the addresses the driver got or passed.
 */
static dma_addr_t w_map_page(struct device *dev, struct page *page,
			     unsigned long offset, size_t size,
			     enum dma_data_direction dir, unsigned long attrs)
{
	phys_addr_t phys = page_to_phys(page) + offset;
	bool mis = misaddress_map(dev, attrs) && frame_foreign(phys, size);
	u64 prev, call = call_begin(&prev);
	dma_addr_t addr;

	addr = w.orig->map_page(dev, page, offset, size, dir,
				mis ? attrs | DMA_ATTR_SKIP_CPU_SYNC : attrs);
	if (mis && addr != DMA_MAPPING_ERROR)
		misaddressed_sync(dev, phys, addr, size, dir);
	call_marker_end(prev);
	/* a refused mapping (the driver sees the error): no address */
	if (addr != DMA_MAPPING_ERROR) {
		addr = fault_add(dev, phys, addr, size, dir, attrs);
		push_map(call, dev, phys, addr, size, dir);
	}
	call_end();
	return addr;
}

static void w_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
			 enum dma_data_direction dir, unsigned long attrs)
{
	u64 prev, call = call_begin(&prev);
	dma_addr_t real;
	u32 f;

	real = fault_find(addr, &f, true);
	if (f & (DMAHIL_FAULT_SKIP_CPU_SYNC | DMAHIL_FAULT_NO_COPY_BACK))
		attrs |= DMA_ATTR_SKIP_CPU_SYNC;
	w.orig->unmap_page(dev, real, size, dir, attrs);
	call_marker_end(prev);
	push_op(call, DMAHIL_DEV_UNMAP, addr, size, dir);
	call_end();
}

static int w_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
		    enum dma_data_direction dir, unsigned long attrs)
{
	u64 prev, call = call_begin(&prev);
	struct scatterlist *s;
	bool mis = false;
	int ret, i;

	if (misaddress_map(dev, attrs))
		for_each_sg(sgl, s, nents, i)
			mis |= frame_foreign(sg_phys(s), s->length);
	ret = w.orig->map_sg(dev, sgl, nents, dir,
			     mis ? attrs | DMA_ATTR_SKIP_CPU_SYNC : attrs);
	if (mis)
		for_each_sg(sgl, s, max(ret, 0), i)
			misaddressed_sync(dev, sg_phys(s), sg_dma_address(s),
					  sg_dma_len(s), dir);
	call_marker_end(prev);
	for_each_sg(sgl, s, max(ret, 0), i) {
		sg_dma_address(s) = fault_add(dev, sg_phys(s),
					      sg_dma_address(s),
					      sg_dma_len(s), dir, attrs);
		push_map(call, dev, sg_phys(s), sg_dma_address(s),
			 sg_dma_len(s), dir);
	}
	call_end();
	return ret;
}

/*
 * With a faulted mapping live, a list is unmapped or synced entry by entry at
 * the real addresses, as swiotlb-xen's own sg ops do
 * (drivers/xen/swiotlb-xen.c xen_swiotlb_unmap_sg(), ..._sync_sg_for_*()).
 */
static void w_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
		       enum dma_data_direction dir, unsigned long attrs)
{
	u64 prev, call = call_begin(&prev);
	struct scatterlist *s;
	dma_addr_t real;
	u32 f;
	int i;

	if (!atomic_read(&faulted_live)) {
		w.orig->unmap_sg(dev, sgl, nents, dir, attrs);
	} else {
		for_each_sg(sgl, s, nents, i) {
			real = fault_find(sg_dma_address(s), &f, true);
			w.orig->unmap_page(dev, real, sg_dma_len(s), dir,
					   f & (DMAHIL_FAULT_SKIP_CPU_SYNC |
						DMAHIL_FAULT_NO_COPY_BACK) ?
					   attrs | DMA_ATTR_SKIP_CPU_SYNC :
					   attrs);
		}
	}
	call_marker_end(prev);
	push_sg(call, DMAHIL_DEV_UNMAP, sgl, nents, dir);
	call_end();
}

static void w_sync_single_for_cpu(struct device *dev, dma_addr_t addr,
				  size_t size, enum dma_data_direction dir)
{
	u64 prev, call = call_begin(&prev);
	u32 f;

	w.orig->sync_single_for_cpu(dev, fault_find(addr, &f, false), size,
				    dir);
	call_marker_end(prev);
	push_op(call, DMAHIL_DEV_SYNC_FOR_CPU, addr, size, dir);
	call_end();
}

static void w_sync_single_for_device(struct device *dev, dma_addr_t addr,
				     size_t size, enum dma_data_direction dir)
{
	u64 prev, call = call_begin(&prev);
	u32 f;

	w.orig->sync_single_for_device(dev, fault_find(addr, &f, false), size,
				       dir);
	call_marker_end(prev);
	push_op(call, DMAHIL_DEV_SYNC_FOR_DEVICE, addr, size, dir);
	call_end();
}

/**
 * sync_sg() - forward an sg sync, at the real addresses
 * @dev: the device
 * @sgl: the driver's list
 * @nents: its mapped entries
 * @dir: their direction
 * @op: DMAHIL_DEV_SYNC_FOR_CPU or DMAHIL_DEV_SYNC_FOR_DEVICE
 */
static void sync_sg(struct device *dev, struct scatterlist *sgl, int nents,
		    enum dma_data_direction dir, u32 op)
{
	bool cpu = op == DMAHIL_DEV_SYNC_FOR_CPU;
	u64 prev, call = call_begin(&prev);
	struct scatterlist *s;
	dma_addr_t real;
	u32 f;
	int i;

	if (!atomic_read(&faulted_live) ||
	    !(cpu ? w.orig->sync_single_for_cpu :
		    w.orig->sync_single_for_device)) {
		if (cpu)
			w.orig->sync_sg_for_cpu(dev, sgl, nents, dir);
		else
			w.orig->sync_sg_for_device(dev, sgl, nents, dir);
	} else {
		for_each_sg(sgl, s, nents, i) {
			real = fault_find(sg_dma_address(s), &f, false);
			if (cpu)
				w.orig->sync_single_for_cpu(dev, real,
							    sg_dma_len(s), dir);
			else
				w.orig->sync_single_for_device(dev, real,
							       sg_dma_len(s),
							       dir);
		}
	}
	call_marker_end(prev);
	push_sg(call, op, sgl, nents, dir);
	call_end();
}

static void w_sync_sg_for_cpu(struct device *dev, struct scatterlist *sgl,
			      int nents, enum dma_data_direction dir)
{
	sync_sg(dev, sgl, nents, dir, DMAHIL_DEV_SYNC_FOR_CPU);
}

static void w_sync_sg_for_device(struct device *dev, struct scatterlist *sgl,
				 int nents, enum dma_data_direction dir)
{
	sync_sg(dev, sgl, nents, dir, DMAHIL_DEV_SYNC_FOR_DEVICE);
}

/**
 * find_device() - the device a user names
 * @name: a device-tree path ("/soc/mmc@fe320000"), or the dev_name() of a
 *	PCI device ("0000:00:03.0") or of a platform device ("fe320000.mmc")
 *
 * Return: the device with a reference held, or NULL.
 */
static struct device *find_device(const char *name)
{
	struct platform_device *pdev;
	struct device_node *np;
	struct device *dev;

	if (name[0] == '/') {
		np = of_find_node_by_path(name);
		if (!np)
			return NULL;
		pdev = of_find_device_by_node(np);
		of_node_put(np);
		return pdev ? &pdev->dev : NULL;
	}
	dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
	if (!dev)
		dev = bus_find_device_by_name(&platform_bus_type, NULL, name);
	return dev;
}

/**
 * unwatch() - put the device's own ops back and drop it
 *
 * Context: dmahil_lock held; may sleep (an RCU grace period, then every
 * wrapper still running).
 */
static void unwatch(void)
{
	unsigned long flags;

	if (!w.dev)
		return;
	if (!w.direct) {
		set_dma_ops(w.dev, w.orig);
		synchronize_rcu();
		wait_var_event(&w.inflight, !atomic_read(&w.inflight));
	}
	spin_lock_irqsave(&w.lock, flags);
	w.recording = false;
	spin_unlock_irqrestore(&w.lock, flags);
	/* no wrapper runs: a mapping still live is the device's own now */
	spin_lock_irqsave(&faulted_lock, flags);
	if (faulted)
		memset(faulted, 0, DMAHIL_DEV_FAULTED * sizeof(*faulted));
	atomic_set(&faulted_live, 0);
	spin_unlock_irqrestore(&faulted_lock, flags);
	dev_info(w.dev, "dmahil: DMA-API audit off\n");
	put_device(w.dev);
	w.dev = NULL;
	w.owner = NULL;
}

/**
 * dmahil_dev_watch() - DMAHIL_IOC_WATCH: start or stop watching a device
 * @owner: the calling file
 * @arg: user pointer to struct dmahil_watch
 *
 * Context: dmahil_lock held.
 * A device without DMA-mapping ops (dma-direct) is held with @direct set
 * and nothing installed: under Xen that is itself the fault
 * (dma-ops-bypass-xen), and there are no ops to interpose on.
 *
 * Return: 0; -EFAULT for a bad pointer; -EINVAL for a nonzero @direct, an
 * unterminated or empty name, or @on > 1; -EBUSY if a device is watched
 * (starting) or another file watches it (stopping); -ENODEV if no device
 * has that name; -EOPNOTSUPP if its ops have no map_page or unmap_page;
 * -ENOMEM if the record buffer could not be allocated at load.
 */
long dmahil_dev_watch(const void *owner, void __user *arg)
{
	struct dma_map_ops *const copy = w.wrap;
	const struct dma_map_ops *ops;
	struct dmahil_watch a;
	unsigned long flags;
	struct device *dev;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.direct || a.on > 1)
		return -EINVAL;
	if (!a.on) {
		if (w.dev && w.owner != owner)
			return -EBUSY;
		unwatch();
		return 0;
	}
	if (!memchr(a.device, '\0', sizeof(a.device)) || !a.device[0])
		return -EINVAL;
	if (w.dev)
		return -EBUSY;
	if (!w.buf || !w.wrap)
		return -ENOMEM;
	dev = find_device(a.device);
	if (!dev)
		return -ENODEV;
	ops = get_dma_ops(dev);
	if (!ops) {
		a.direct = 1;
		if (copy_to_user(arg, &a, sizeof(a))) {
			put_device(dev);
			return -EFAULT;
		}
		spin_lock_irqsave(&w.lock, flags);
		w.count = 0;
		w.dropped = 0;
		w.recording = false;
		spin_unlock_irqrestore(&w.lock, flags);
		w.dev = dev;
		w.owner = owner;
		w.direct = true;
		dev_info(dev, "dmahil: no DMA-mapping ops (dma-direct)\n");
		return 0;
	}
	if (!ops->map_page || !ops->unmap_page) {
		put_device(dev);
		return -EOPNOTSUPP;
	}
	w.orig = ops;
	*copy = *ops;
	copy->map_page = w_map_page;
	copy->unmap_page = w_unmap_page;
	copy->map_sg = ops->map_sg ? w_map_sg : NULL;
	copy->unmap_sg = ops->unmap_sg ? w_unmap_sg : NULL;
	copy->sync_single_for_cpu =
		ops->sync_single_for_cpu ? w_sync_single_for_cpu : NULL;
	copy->sync_single_for_device =
		ops->sync_single_for_device ? w_sync_single_for_device : NULL;
	copy->sync_sg_for_cpu =
		ops->sync_sg_for_cpu ? w_sync_sg_for_cpu : NULL;
	copy->sync_sg_for_device =
		ops->sync_sg_for_device ? w_sync_sg_for_device : NULL;
	spin_lock_irqsave(&w.lock, flags);
	w.head = 0;
	w.count = 0;
	w.dropped = 0;
	w.recording = true;
	spin_unlock_irqrestore(&w.lock, flags);
	atomic64_set(&w.calls, 0);
	w.dev = dev;
	w.owner = owner;
	w.direct = false;
	set_dma_ops(dev, copy);
	dev_info(dev, "dmahil: DMA-API audit on (%ps)\n", ops);
	return 0;
}

/**
 * dmahil_dev_watch_read() - DMAHIL_IOC_WATCH_READ: drain the records
 * @owner: the calling file
 * @arg: user pointer to struct dmahil_watch_read
 *
 * Context: dmahil_lock held.
 * Return: 0; -EFAULT for a bad pointer; -EINVAL for a nonzero @pad or a
 * @cap of 0 or above DMAHIL_DEV_RECORDS; -ENOENT if this file watches no
 * device; -ENOMEM.  Records are removed only once they reached user space.
 */
long dmahil_dev_watch_read(const void *owner, void __user *arg)
{
	struct dmahil_watch_read a;
	struct dmahil_dev_op *tmp;
	unsigned long flags;
	u32 i, n, dropped;
	long ret = 0;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.pad || !a.cap || a.cap > DMAHIL_DEV_RECORDS)
		return -EINVAL;
	if (!w.dev || w.owner != owner)
		return -ENOENT;
	tmp = kvmalloc_array(a.cap, sizeof(*tmp), GFP_KERNEL);
	if (!tmp)
		return -ENOMEM;
	spin_lock_irqsave(&w.lock, flags);
	n = min(a.cap, w.count);
	for (i = 0; i < n; i++)
		tmp[i] = w.buf[(w.head + i) % DMAHIL_DEV_RECORDS];
	dropped = w.dropped;
	spin_unlock_irqrestore(&w.lock, flags);
	if (copy_to_user(u64_to_user_ptr(a.ptr), tmp, n * sizeof(*tmp))) {
		ret = -EFAULT;
		goto out;
	}
	a.count = n;
	a.dropped = dropped;
	if (copy_to_user(arg, &a, sizeof(a))) {
		ret = -EFAULT;
		goto out;
	}
	spin_lock_irqsave(&w.lock, flags);
	w.head = (w.head + n) % DMAHIL_DEV_RECORDS;
	w.count -= n;
	w.dropped -= dropped;
	spin_unlock_irqrestore(&w.lock, flags);
out:
	kvfree(tmp);
	return ret;
}

/**
 * dmahil_dev_audit_release() - a file closes: end its watch
 * @owner: the file
 *
 * Context: dmahil_lock held; may sleep.
 */
void dmahil_dev_audit_release(const void *owner)
{
	if (w.dev && w.owner == owner)
		unwatch();
}

/**
 * dmahil_dev_audit_init() - allocate the record ring and the ops copy
 *
 * Never fails: without them DMAHIL_IOC_WATCH is -ENOMEM.
 */
void dmahil_dev_audit_init(void)
{
	w.buf = kvcalloc(DMAHIL_DEV_RECORDS, sizeof(*w.buf), GFP_KERNEL);
	faulted = kvcalloc(DMAHIL_DEV_FAULTED, sizeof(*faulted), GFP_KERNEL);
	w.wrap = kzalloc(sizeof(const struct dma_map_ops), GFP_KERNEL);
}

/**
 * dmahil_dev_audit_exit() - end any watch and free the ring
 *
 * Context: no file is open (the module is unloading).
 */
void dmahil_dev_audit_exit(void)
{
	mutex_lock(&dmahil_lock);
	unwatch();
	mutex_unlock(&dmahil_lock);
	kvfree(w.buf);
	w.buf = NULL;
	kfree(w.wrap);
	w.wrap = NULL;
	kvfree(faulted);
	faulted = NULL;
}
