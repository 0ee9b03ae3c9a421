// SPDX-License-Identifier: GPL-2.0
/*
 * The maintenance audit: kprobes that record every cache-maintenance operation the kernel
 * issues on behalf of one dmahil ioctl.
 *
 * What Linux 6.1 does for a streaming mapping of a non-coherent device under Xen on Arm
 * (drivers/xen/swiotlb-xen.c: xen_swiotlb_map_page/unmap_page/sync_single_for_*):
 *   if pfn_valid(PFN_DOWN(dma_to_phys(dev, dma_addr)))   -- the bus frame is dom0 RAM
 *       arch_sync_dma_for_{device,cpu}(phys, size, dir)   -- by VA, on the pfn's address
 *   else                                                  -- a foreign (other domain's) frame
 *       xen_dma_sync_for_{device,cpu}(dev, dma_addr, size, dir)
 *         -> arch/arm/xen/mm.c dma_cache_maint(): one HYPERVISOR_grant_table_op(
 *            GNTTABOP_cache_flush, &cflush, 1) per 4 KiB Xen page, with
 *            cflush.a.dev_bus_addr = the page's bus address, .offset/.length = the bytes
 *            in that page, .op = GNTTAB_CACHE_CLEAN (for_device, dir != FROM_DEVICE) or
 *            GNTTAB_CACHE_INVAL (for_device FROM_DEVICE; for_cpu dir != TO_DEVICE).
 * (A page a domain grants to itself, e.g. dom0 gntalloc + gntdev of domid 0, has a bus
 * frame inside dom0's own 1:1 RAM, so it takes the arch_sync path with its pfn address.)
 *
 * arch/arm64/mm/dma-mapping.c (6.1):
 *   arch_sync_dma_for_device(paddr, size, dir): dcache_clean_poc() for every direction
 *     (6.1 no longer invalidates FROM_DEVICE buffers here) -> recorded as CLEAN;
 *   arch_sync_dma_for_cpu(paddr, size, dir): returns at once for DMA_TO_DEVICE, else
 *     dcache_inval_poc() -> recorded as INVAL (nothing recorded for TO_DEVICE).
 *
 * Records are taken only while dmahil_audit_begin()..end() brackets an ioctl, only in
 * task context and only for the task that called begin(): other CPUs' and interrupts'
 * DMA maintenance is not attributed to the ioctl.
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

/* Records kept per ioctl (24 bytes each); a 1024-page map issues at most 1024. */
#define DMAHIL_AUDIT_RECORDS 4096u

static struct {
  spinlock_t lock;
  struct task_struct* task; /* recording for this task, or NULL */
  struct dmahil_cache_op* buf;
  u32 cap;   /* min(user's cap, DMAHIL_AUDIT_RECORDS) */
  u32 count; /* records in buf */
  u32 dropped;
} rec = {.lock = __SPIN_LOCK_UNLOCKED(rec.lock)};

static void record(u64 addr, u64 length, u32 op, u32 kind) {
  unsigned long flags;

  spin_lock_irqsave(&rec.lock, flags);
  if (rec.task == current) {
    if (rec.count < rec.cap) {
      struct dmahil_cache_op* r = &rec.buf[rec.count++];

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

static bool recording_here(void) { return in_task() && READ_ONCE(rec.task) == current; }

/* HYPERVISOR_grant_table_op(unsigned int cmd, void *uop, unsigned int count): x0..x2. */
static int gnttab_pre(struct kprobe* p, struct pt_regs* regs) {
  struct gnttab_cache_flush cf;
  unsigned long uop = regs->regs[1];
  unsigned int n = (unsigned int)regs->regs[2], i;

  if (!recording_here() || (unsigned int)regs->regs[0] != GNTTABOP_cache_flush) return 0;
  for (i = 0; i < min(n, 64u); i++) {
    if (copy_from_kernel_nofault(&cf, (void*)(uop + i * sizeof(cf)), sizeof(cf))) break;
    record(cf.a.dev_bus_addr + cf.offset, cf.length,
           cf.op & (DMAHIL_CACHE_CLEAN | DMAHIL_CACHE_INVAL), DMAHIL_OP_HYPERCALL);
  }
  return 0;
}

/* arch_sync_dma_for_device(phys_addr_t paddr, size_t size, enum dma_data_direction dir) */
static int for_device_pre(struct kprobe* p, struct pt_regs* regs) {
  if (recording_here())
    record(regs->regs[0], regs->regs[1], DMAHIL_CACHE_CLEAN, DMAHIL_OP_ARCH_SYNC);
  return 0;
}

/* arch_sync_dma_for_cpu(phys_addr_t paddr, size_t size, enum dma_data_direction dir) */
static int for_cpu_pre(struct kprobe* p, struct pt_regs* regs) {
  if (recording_here() && regs->regs[2] != DMA_TO_DEVICE)
    record(regs->regs[0], regs->regs[1], DMAHIL_CACHE_INVAL, DMAHIL_OP_ARCH_SYNC);
  return 0;
}

static struct kprobe kp_gnttab = {.symbol_name = "HYPERVISOR_grant_table_op",
                                  .pre_handler = gnttab_pre};
static struct kprobe kp_for_device = {.symbol_name = "arch_sync_dma_for_device",
                                      .pre_handler = for_device_pre};
static struct kprobe kp_for_cpu = {.symbol_name = "arch_sync_dma_for_cpu",
                                   .pre_handler = for_cpu_pre};
static bool gnttab_armed, arch_sync_armed;

bool dmahil_audit_hypercall_armed(void) { return gnttab_armed; }
bool dmahil_audit_arch_sync_armed(void) { return arch_sync_armed; }

/* Never fails: a probe that cannot be registered is reported unarmed by INFO. */
void dmahil_audit_init(void) {
  int err;

  rec.buf = kvcalloc(DMAHIL_AUDIT_RECORDS, sizeof(*rec.buf), GFP_KERNEL);
  if (!rec.buf) {
    pr_warn("dmahil: no memory for the audit buffer: audit disabled\n");
    return;
  }
  err = register_kprobe(&kp_gnttab);
  if (err)
    pr_warn("dmahil: kprobe on %s failed (%d): hypercall audit disabled\n", kp_gnttab.symbol_name,
            err);
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
  pr_info("dmahil: audit: hypercall %s, arch_sync %s\n", gnttab_armed ? "armed" : "off",
          arch_sync_armed ? "armed" : "off");
}

void dmahil_audit_exit(void) {
  if (gnttab_armed) unregister_kprobe(&kp_gnttab);
  if (arch_sync_armed) {
    unregister_kprobe(&kp_for_device);
    unregister_kprobe(&kp_for_cpu);
  }
  gnttab_armed = arch_sync_armed = false;
  kvfree(rec.buf);
  rec.buf = NULL;
}

void dmahil_audit_begin(u32 cap) {
  unsigned long flags;

  spin_lock_irqsave(&rec.lock, flags);
  rec.cap = rec.buf ? min(cap, DMAHIL_AUDIT_RECORDS) : 0;
  rec.count = 0;
  rec.dropped = 0;
  WRITE_ONCE(rec.task, current);
  spin_unlock_irqrestore(&rec.lock, flags);
}

const struct dmahil_cache_op* dmahil_audit_end(u32* count, u32* dropped) {
  unsigned long flags;

  spin_lock_irqsave(&rec.lock, flags);
  WRITE_ONCE(rec.task, NULL);
  *count = rec.count;
  *dropped = rec.dropped;
  spin_unlock_irqrestore(&rec.lock, flags);
  return rec.buf;
}
