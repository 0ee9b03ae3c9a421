/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dmahil.ko's user ABI: the misc device /dev/dmahil (issue 4).
 *
 * The dom0 agent's linux-xen backend (agent/linux_xen_backend.h) pins user pages (a
 * gntdev mapping of a domU's grants, or the agent's own anonymous pages), maps them for
 * the DMA engine with the real DMA API (dma_map_page / dma_map_sg, as the fixture's
 * direction says), syncs and unmaps them, and drives the engine (QEMU's `edu` PCI device
 * on the qemu-xen-arm64 board) only inside the windows it mapped.
 *
 * Every cache-maintenance operation the kernel issues while the module maps, syncs or
 * unmaps is recorded (kprobes on HYPERVISOR_grant_table_op for GNTTABOP_cache_flush, the
 * hypercall arch/arm/xen/mm.c dma_cache_maint() makes for foreign pages, and on
 * arch_sync_dma_for_device / arch_sync_dma_for_cpu for dom0's own pages) and returned by
 * the ioctl that caused it: the maintenance audit.
 *
 * Units: addresses and sizes in bytes; "page" means a 4 KiB Xen page (the module refuses
 * to load on a kernel whose PAGE_SIZE is not 4096). All structs are naturally aligned,
 * with explicit padding, so the layout is the same for aarch64 and x86_64 builds.
 *
 * Errors (negative errno from ioctl): EINVAL bad argument (size, direction, alignment,
 * reserved field not zero), ENOENT unknown pin or mapping handle, EBUSY a pin still has
 * mappings, ENOMEM/ENOSPC out of handles or the DMA API failed (swiotlb full, address not
 * reachable under the mask), EFAULT bad user pointer, EACCES an engine transfer outside
 * every live mapping's windows, EIO the engine reported an error or timed out, ENODEV no
 * engine bound.
 */
#ifndef DMAHIL_UAPI_H
#define DMAHIL_UAPI_H

#ifdef __KERNEL__
#include <linux/ioctl.h>
#include <linux/types.h>
#else
#include <linux/ioctl.h>
#include <linux/types.h>
#endif

#define DMAHIL_DEVICE_PATH "/dev/dmahil"
#define DMAHIL_ABI_VERSION 1

/* Limits. */
#define DMAHIL_MAX_PIN_PAGES 1024u  /* pages per pin */
#define DMAHIL_MAX_SEGMENTS 1024u   /* segments per mapping */
#define DMAHIL_MAX_XFER_BYTES 65536u /* bytes per engine transfer ioctl */

/* Directions: the values of Linux's enum dma_data_direction. */
#define DMAHIL_DMA_BIDIRECTIONAL 0u
#define DMAHIL_DMA_TO_DEVICE 1u
#define DMAHIL_DMA_FROM_DEVICE 2u

/* Fault switches (module parameter `faults`, a bit mask; reported by DMAHIL_IOC_INFO). */
/* dma-ops-bypass-xen: report and let the engine use page_to_phys() instead of the DMA
 * API's address (a foreign page's pfn, not its bfn). */
#define DMAHIL_FAULT_BYPASS (1u << 0)
/* Map and unmap with DMA_ATTR_SKIP_CPU_SYNC: the kernel issues no maintenance. */
#define DMAHIL_FAULT_SKIP_CPU_SYNC (1u << 1)
/* Map with DMA_ATTR_SKIP_CPU_SYNC, then dma_sync_single_for_device() one page (4096
 * bytes) past each segment: the maintenance is issued, at the wrong address. */
#define DMAHIL_FAULT_SYNC_MISADDRESS (1u << 2)

struct dmahil_info {
	__u32 abi_version;   /* out: DMAHIL_ABI_VERSION */
	__u32 faults;        /* out: DMAHIL_FAULT_* in effect */
	__u32 coherent;      /* out: 1 if the engine's struct device is DMA-coherent */
	__u32 engine_bound;  /* out: 1 if the edu device is bound and not wedged (a DMA timed out) */
	__u64 dma_mask;      /* out: the engine's current DMA mask */
	__u32 audit_hypercall; /* out: 1 if the GNTTABOP_cache_flush kprobe is armed */
	__u32 audit_arch_sync; /* out: 1 if the arch_sync_dma_* kprobes are armed */
	char engine[32];     /* out: NUL-terminated, e.g. "edu 0000:00:01.0" */
};

/* One cache-maintenance operation the kernel issued. */
#define DMAHIL_CACHE_CLEAN (1u << 0) /* GNTTAB_CACHE_CLEAN */
#define DMAHIL_CACHE_INVAL (1u << 1) /* GNTTAB_CACHE_INVAL */
#define DMAHIL_OP_HYPERCALL 1u  /* GNTTABOP_cache_flush: addr is the machine address */
#define DMAHIL_OP_ARCH_SYNC 2u  /* arch_sync_dma_for_{device,cpu}: addr is the phys addr */
struct dmahil_cache_op {
	__u64 addr;   /* machine (hypercall) or physical (arch sync) address, incl. offset */
	__u32 length; /* bytes */
	__u32 op;     /* DMAHIL_CACHE_CLEAN and/or DMAHIL_CACHE_INVAL */
	__u32 kind;   /* DMAHIL_OP_* */
	__u32 pad;    /* zero */
};

/* Where an ioctl returns the maintenance it caused: `ptr` to `cap` records (may be 0). */
struct dmahil_ops_out {
	__u64 ptr;      /* in: user pointer to struct dmahil_cache_op[cap] */
	__u32 cap;      /* in */
	__u32 count;    /* out: records written (<= cap) */
	__u32 dropped;  /* out: records that did not fit */
	__u32 pad;      /* zero */
};

/* Pin `pages` user pages at `uaddr` (page aligned): pin_user_pages_fast(FOLL_WRITE |
 * FOLL_LONGTERM). Works on a gntdev mapping (VM_MIXEDMAP) and on anonymous memory. */
struct dmahil_pin {
	__u64 uaddr;     /* in */
	__u32 pages;     /* in: 1..DMAHIL_MAX_PIN_PAGES */
	__u32 pin;       /* out: handle, never 0 */
	__u64 pfns_ptr;  /* in: user pointer to __u64[pages]; out: each page's dom0 pfn */
	__u64 bfns_ptr;  /* in: user pointer to __u64[pages]; out: pfn_to_bfn(pfn) */
};

/* Map [offset, offset + length) of a pin for the engine. */
struct dmahil_seg {
	__u64 offset;    /* bytes into the pin */
	__u64 dma_addr;  /* dma_addr_t the device must use */
	__u64 pfn;       /* dom0 pfn of the segment's first page */
	__u64 bfn;       /* pfn_to_bfn(pfn) */
	__u32 length;    /* bytes */
	__u32 flags;     /* DMAHIL_SEG_* */
};
#define DMAHIL_SEG_FOREIGN (1u << 0) /* pfn != bfn */
#define DMAHIL_SEG_BOUNCED (1u << 1) /* dma_addr is not bfn's address: swiotlb bounce */
struct dmahil_map {
	__u32 pin;        /* in */
	__u32 direction;  /* in: DMAHIL_DMA_* */
	__u64 offset;     /* in: bytes into the pin */
	__u64 length;     /* in: bytes, > 0, offset + length <= pages * 4096 */
	__u32 sg;         /* in: 0: dma_map_page per 4 KiB page; 1: one dma_map_sg */
	__u32 mask_bits;  /* in: 0: keep the mask; else dma_set_mask_and_coherent(32..64) */
	__u32 mapping;    /* out: handle, never 0 */
	__u32 nsegs;      /* in: capacity of segs_ptr; out: segments */
	__u64 segs_ptr;   /* in: user pointer to struct dmahil_seg[nsegs] */
	struct dmahil_ops_out ops; /* maintenance issued by the map */
};

#define DMAHIL_SYNC_FOR_CPU 1u
#define DMAHIL_SYNC_FOR_DEVICE 2u
struct dmahil_sync {
	__u32 mapping;  /* in */
	__u32 for_;     /* in: DMAHIL_SYNC_FOR_* */
	struct dmahil_ops_out ops;
};

struct dmahil_unmap {
	__u32 mapping;  /* in */
	__u32 pad;      /* zero */
	struct dmahil_ops_out ops;
};

/* The engine moves `length` bytes between bus address `dma_addr` and the user buffer
 * `uaddr`. The whole range must lie inside one segment of a live mapping (EACCES
 * otherwise). On edu it goes through a module-owned staging buffer, 2048 bytes at a time
 * through edu's buffer [0, 2048). */
#define DMAHIL_XFER_READ 1u   /* device reads memory at dma_addr into uaddr */
#define DMAHIL_XFER_WRITE 2u  /* device writes uaddr's bytes to memory at dma_addr */
struct dmahil_xfer {
	__u64 dma_addr;  /* in: bus address */
	__u64 uaddr;     /* in: user buffer */
	__u32 length;    /* in: 1..DMAHIL_MAX_XFER_BYTES */
	__u32 op;        /* in: DMAHIL_XFER_* */
};

#define DMAHIL_IOC_MAGIC 'D'
#define DMAHIL_IOC_INFO _IOR(DMAHIL_IOC_MAGIC, 0x00, struct dmahil_info)
#define DMAHIL_IOC_PIN _IOWR(DMAHIL_IOC_MAGIC, 0x01, struct dmahil_pin)
#define DMAHIL_IOC_UNPIN _IOW(DMAHIL_IOC_MAGIC, 0x02, __u32)
#define DMAHIL_IOC_MAP _IOWR(DMAHIL_IOC_MAGIC, 0x03, struct dmahil_map)
#define DMAHIL_IOC_SYNC _IOWR(DMAHIL_IOC_MAGIC, 0x04, struct dmahil_sync)
#define DMAHIL_IOC_UNMAP _IOWR(DMAHIL_IOC_MAGIC, 0x05, struct dmahil_unmap)
#define DMAHIL_IOC_XFER _IOW(DMAHIL_IOC_MAGIC, 0x06, struct dmahil_xfer)

#endif /* DMAHIL_UAPI_H */
