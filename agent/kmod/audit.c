// SPDX-License-Identifier: GPL-2.0
/*
 * The maintenance audit: kprobes that record every cache-maintenance
 * operation the kernel issues on behalf of one dmahil ioctl.
 *
 * What Linux 6.1 does for a streaming mapping of a non-coherent device under
 * Xen on Arm (drivers/xen/swiotlb-xen.c: xen_swiotlb_map_page(),
 * xen_swiotlb_unmap_page(), xen_swiotlb_sync_single_for_*()):
 *
 *   if (pfn_valid(PFN_DOWN(dma_to_phys(dev, dma_addr))))
 *           the bus frame is dom0 RAM:
 *           arch_sync_dma_for_{device,cpu}(phys, size, dir), by VA, on the
 *           pfn's address;
 *   else    a foreign (another domain's) frame:
 *           xen_dma_sync_for_{device,cpu}(dev, dma_addr, size, dir), that is
 *           dma_cache_maint() in arch/arm/xen/mm.c: one
 *           HYPERVISOR_grant_table_op(GNTTABOP_cache_flush, &cflush, 1) per
 *           4 KiB Xen page, with cflush.a.dev_bus_addr the page's bus
 *           address, .offset and .length the bytes in that page, and .op
 *           GNTTAB_CACHE_CLEAN (for_device, dir != FROM_DEVICE) or
 *           GNTTAB_CACHE_INVAL (for_device FROM_DEVICE; for_cpu
 *           dir != TO_DEVICE).
 *
 * A page a domain grants to itself (dom0 gntalloc + gntdev of domid 0) has a
 * bus frame inside dom0's own 1:1 RAM, so it takes the arch_sync path with
 * its pfn address.
 *
 * arch/arm64/mm/dma-mapping.c (6.1):
 *   arch_sync_dma_for_device(paddr, size, dir): dcache_clean_poc() for every
 *     direction (6.1 no longer invalidates FROM_DEVICE buffers there):
 *     recorded as CLEAN;
 *   arch_sync_dma_for_cpu(paddr, size, dir): returns at once for
 *     DMA_TO_DEVICE, else dcache_inval_poc(): recorded as INVAL (nothing is
 *     recorded for TO_DEVICE).
 *
 * Records are taken only while dmahil_audit_begin()..dmahil_audit_end()
 * bracket an ioctl, only in task context and only for the task that called
 * begin: other CPUs' and interrupts' DMA maintenance is not attributed to the
 * ioctl.  Each handler also hands what it saw to dev_audit.c, which keeps
 * it if this CPU is inside a call of a watched device's DMA-mapping ops (in
 * any context).
 */
#include <linux/dma-direction.h>
#include <linux/kprobes.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <xen/interface/grant_table.h>

#include "dmahil.h"

/* Records kept per ioctl (24 bytes each); a 1024-page map issues <= 1024. */
#define DMAHIL_AUDIT_RECORDS 4096u
/* GNTTABOP_cache_flush entries read per hypercall (Linux issues one) */
#define DMAHIL_AUDIT_FLUSH_MAX 64u

/**
 * struct dmahil_audit - the recording in progress
 * @lock: protects every other field; taken from the kprobe handlers
 * @task: the task whose maintenance is recorded, or NULL
 * @buf: DMAHIL_AUDIT_RECORDS records, or NULL if the allocation failed
 * @cap: min(the caller's capacity, DMAHIL_AUDIT_RECORDS)
 * @count: records in @buf
 * @dropped: records past @cap
 */
struct dmahil_audit {
	spinlock_t lock; /* see the kernel-doc above */
	struct task_struct *task;
	struct dmahil_cache_op *buf;
	u32 cap;
	u32 count;
	u32 dropped;
};

static struct dmahil_audit rec = {
	.lock = __SPIN_LOCK_UNLOCKED(rec.lock),
};

/**
 * record() - record one maintenance operation if current is being audited
 * @addr: machine or physical address
 * @length: bytes (saturated to U32_MAX)
 * @op: DMAHIL_CACHE_*
 * @kind: DMAHIL_OP_*
 *
 * Context: any; takes rec.lock with interrupts off.
 */
static void record(u64 addr, u64 length, u32 op, u32 kind)
{
	struct dmahil_cache_op *r;
	unsigned long flags;

	spin_lock_irqsave(&rec.lock, flags);
	if (rec.task == current) {
		if (rec.count < rec.cap) {
			r = &rec.buf[rec.count++];
			r->addr = addr;
			r->length = (u32)min_t(u64, length, U32_MAX);
			r->op = op;
			r->kind = kind;
			r->pad = 0;
		} else {
			rec.dropped++;
		}
	}
	spin_unlock_irqrestore(&rec.lock, flags);
}

/**
 * recording_here() - whether the current context is being audited
 *
 * Return: true in task context of the task that called dmahil_audit_begin().
 */
static bool recording_here(void)
{
	return in_task() && READ_ONCE(rec.task) == current;
}

/**
 * gnttab_pre() - kprobe on HYPERVISOR_grant_table_op()
 * @p: the kprobe
 * @regs: x0 cmd, x1 uop (struct gnttab_cache_flush[count]), x2 count
 *
 * Records each GNTTABOP_cache_flush entry (at most DMAHIL_AUDIT_FLUSH_MAX) as
 * a DMAHIL_OP_HYPERCALL at its bus address plus offset.
 *
 * Return: 0 (the probed function runs).
 */
static int gnttab_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct gnttab_cache_flush cf;
	unsigned long uop = regs->regs[1];
	unsigned int n = (unsigned int)regs->regs[2], i;

	bool here = recording_here(), dev = dmahil_dev_call_active();
	u32 op;

	if ((!here && !dev) ||
	    (unsigned int)regs->regs[0] != GNTTABOP_cache_flush)
		return 0;
	for (i = 0; i < min(n, DMAHIL_AUDIT_FLUSH_MAX); i++) {
		if (copy_from_kernel_nofault(&cf,
					     (void *)(uop + i * sizeof(cf)),
					     sizeof(cf)))
			break;
		op = cf.op & (DMAHIL_CACHE_CLEAN | DMAHIL_CACHE_INVAL);
		if (here)
			record(cf.a.dev_bus_addr + cf.offset, cf.length, op,
			       DMAHIL_OP_HYPERCALL);
		if (dev)
			dmahil_dev_audit_maint(cf.a.dev_bus_addr + cf.offset,
					       cf.length, op,
					       DMAHIL_OP_HYPERCALL);
	}
	return 0;
}

/**
 * for_device_pre() - kprobe on arch_sync_dma_for_device()
 * @p: the kprobe
 * @regs: x0 paddr, x1 size, x2 dir
 *
 * Records a DMAHIL_CACHE_CLEAN (arm64 cleans for every direction).
 *
 * Return: 0 (the probed function runs).
 */
static int for_device_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (recording_here())
		record(regs->regs[0], regs->regs[1], DMAHIL_CACHE_CLEAN,
		       DMAHIL_OP_ARCH_SYNC);
	dmahil_dev_audit_maint(regs->regs[0], regs->regs[1],
			       DMAHIL_CACHE_CLEAN, DMAHIL_OP_ARCH_SYNC);
	return 0;
}

/**
 * for_cpu_pre() - kprobe on arch_sync_dma_for_cpu()
 * @p: the kprobe
 * @regs: x0 paddr, x1 size, x2 dir
 *
 * Records a DMAHIL_CACHE_INVAL unless dir is DMA_TO_DEVICE (arm64 does
 * nothing then).
 *
 * Return: 0 (the probed function runs).
 */
static int for_cpu_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (regs->regs[2] == DMA_TO_DEVICE)
		return 0;
	if (recording_here())
		record(regs->regs[0], regs->regs[1], DMAHIL_CACHE_INVAL,
		       DMAHIL_OP_ARCH_SYNC);
	dmahil_dev_audit_maint(regs->regs[0], regs->regs[1],
			       DMAHIL_CACHE_INVAL, DMAHIL_OP_ARCH_SYNC);
	return 0;
}

static struct kprobe kp_gnttab = {
	.symbol_name = "HYPERVISOR_grant_table_op",
	.pre_handler = gnttab_pre,
};

static struct kprobe kp_for_device = {
	.symbol_name = "arch_sync_dma_for_device",
	.pre_handler = for_device_pre,
};

static struct kprobe kp_for_cpu = {
	.symbol_name = "arch_sync_dma_for_cpu",
	.pre_handler = for_cpu_pre,
};

static bool gnttab_armed;
static bool arch_sync_armed;

/**
 * dmahil_audit_hypercall_armed() - whether the hypercall kprobe is armed
 *
 * Return: true if GNTTABOP_cache_flush is recorded.
 */
bool dmahil_audit_hypercall_armed(void)
{
	return gnttab_armed;
}

/**
 * dmahil_audit_arch_sync_armed() - whether the arch_sync kprobes are armed
 *
 * Return: true if arch_sync_dma_for_device() and arch_sync_dma_for_cpu() are
 * recorded.
 */
bool dmahil_audit_arch_sync_armed(void)
{
	return arch_sync_armed;
}

/**
 * dmahil_audit_init() - allocate the record buffer and arm the kprobes
 *
 * Never fails: a probe that cannot be registered is reported unarmed by
 * DMAHIL_IOC_INFO (both are, if the buffer cannot be allocated).
 */
void dmahil_audit_init(void)
{
	int err;

	rec.buf = kvcalloc(DMAHIL_AUDIT_RECORDS, sizeof(*rec.buf), GFP_KERNEL);
	if (!rec.buf)
		return;	/* the allocator has said why; INFO says "unarmed" */
	err = register_kprobe(&kp_gnttab);
	if (err)
		pr_warn("dmahil: kprobe on %s failed (%d): hypercall audit disabled\n",
			kp_gnttab.symbol_name, err);
	gnttab_armed = !err;

	err = register_kprobe(&kp_for_device);
	if (err) {
		pr_warn("dmahil: kprobe on %s failed (%d): arch-sync audit disabled\n",
			kp_for_device.symbol_name, err);
	} else {
		err = register_kprobe(&kp_for_cpu);
		if (err) {
			pr_warn("dmahil: kprobe on %s failed (%d): arch-sync audit disabled\n",
				kp_for_cpu.symbol_name, err);
			unregister_kprobe(&kp_for_device);
		}
	}
	arch_sync_armed = !err;
	pr_info("dmahil: audit: hypercall %s, arch_sync %s\n",
		gnttab_armed ? "armed" : "off",
		arch_sync_armed ? "armed" : "off");
}

/**
 * dmahil_audit_exit() - disarm the kprobes and free the record buffer
 */
void dmahil_audit_exit(void)
{
	if (gnttab_armed)
		unregister_kprobe(&kp_gnttab);
	if (arch_sync_armed) {
		unregister_kprobe(&kp_for_device);
		unregister_kprobe(&kp_for_cpu);
	}
	gnttab_armed = false;
	arch_sync_armed = false;
	kvfree(rec.buf);
	rec.buf = NULL;
}

/**
 * dmahil_audit_begin() - start recording the maintenance current causes
 * @cap: records the caller can take; records past it, or past
 *	DMAHIL_AUDIT_RECORDS, count as dropped
 *
 * Context: dmahil_lock held (one recording at a time).
 */
void dmahil_audit_begin(u32 cap)
{
	unsigned long flags;

	spin_lock_irqsave(&rec.lock, flags);
	rec.cap = rec.buf ? min(cap, DMAHIL_AUDIT_RECORDS) : 0;
	rec.count = 0;
	rec.dropped = 0;
	WRITE_ONCE(rec.task, current);
	spin_unlock_irqrestore(&rec.lock, flags);
}

/**
 * dmahil_audit_end() - stop recording
 * @count: out: records taken
 * @dropped: out: records that did not fit
 *
 * Context: dmahil_lock held.
 * Return: the records, valid until the next dmahil_audit_begin().
 */
const struct dmahil_cache_op *dmahil_audit_end(u32 *count, u32 *dropped)
{
	unsigned long flags;

	spin_lock_irqsave(&rec.lock, flags);
	WRITE_ONCE(rec.task, NULL);
	*count = rec.count;
	*dropped = rec.dropped;
	spin_unlock_irqrestore(&rec.lock, flags);
	return rec.buf;
}
