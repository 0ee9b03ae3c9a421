/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dmahil.ko's user ABI: the misc device /dev/dmahil.
 *
 * The dom0 agent's linux-xen backend (agent/linux_xen/linux_xen_backend.h)
 * pins user pages (a gntdev mapping of a domU's grants, or the agent's own
 * anonymous pages), maps them for the DMA engine with the real DMA API
 * (dma_map_page or dma_map_sg, as the fixture's direction says), syncs and
 * unmaps them, and drives the engine (QEMU's edu PCI device on the
 * qemu-xen-arm64 board) only inside the windows it mapped.
 *
 * Every cache-maintenance operation the kernel issues while the module maps,
 * syncs or unmaps is recorded and returned by the ioctl that caused it: the
 * maintenance audit.  The kprobes behind it sit on HYPERVISOR_grant_table_op
 * (GNTTABOP_cache_flush, the hypercall dma_cache_maint() in
 * arch/arm/xen/mm.c makes for foreign pages) and on arch_sync_dma_for_device()
 * and arch_sync_dma_for_cpu() (dom0's own pages).
 *
 * Units: addresses and sizes in bytes; "page" means a 4 KiB Xen page
 * (XEN_PAGE_SIZE, the grant interface's unit) whatever dom0's PAGE_SIZE, and
 * every pfn and bfn is a frame number of 4 KiB (XEN_PFN_DOWN() of the
 * address, as include/xen/arm/page.h's pfn_to_bfn() takes it), not a Linux
 * page frame number.  On a 64 KiB-page kernel (CONFIG_ARM64_64K_PAGES) a
 * gntdev or gntalloc mapping holds one 4 KiB grant at the start of each
 * 64 KiB Linux page (drivers/xen/gntdev.c maps each grant at
 * pfn_to_kaddr(page_to_pfn(page)), the page's first Xen frame): such a pin
 * is DMAHIL_PIN_SPARSE.  All structs are naturally aligned, with explicit
 * padding, so the layout is the same for aarch64 and x86_64 builds.
 *
 * Errors (negative errno from ioctl; each ioctl's kernel-doc in
 * dmahil_main.c says which it returns when):
 *   EINVAL  bad argument (size, direction, alignment, reserved field not zero)
 *   ENOENT  unknown pin or mapping handle
 *   EBUSY   a pin still has mappings
 *   ENOMEM  out of memory, or the DMA API failed (swiotlb full, address not
 *           reachable under the mask)
 *   ENOSPC  out of handles
 *   EFAULT  bad user pointer
 *   EACCES  an engine transfer outside every live mapping's windows, or a
 *           write into a segment marked DMAHIL_SEG_WRITE_REFUSED
 *   EIO     the engine refused a DMA or timed out
 *   ENODEV  no engine bound, or no device of the name to watch
 *   EOPNOTSUPP  the device to watch has DMA-mapping ops without map_page
 *   EBUSY   a device is already watched (DMAHIL_IOC_WATCH)
 *   ENOTTY  unknown ioctl
 */
#ifndef DMAHIL_UAPI_H
#define DMAHIL_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DMAHIL_DEVICE_PATH "/dev/dmahil"
#define DMAHIL_ABI_VERSION 3

/* Limits. */
#define DMAHIL_MAX_PIN_PAGES 1024u	/* 4 KiB pages per pin */
#define DMAHIL_MAX_SEGMENTS 1024u	/* segments per mapping */
#define DMAHIL_MAX_XFER_BYTES 65536u	/* bytes per engine transfer ioctl */

/* Directions: the values of Linux's enum dma_data_direction. */
#define DMAHIL_DMA_BIDIRECTIONAL 0u
#define DMAHIL_DMA_TO_DEVICE 1u
#define DMAHIL_DMA_FROM_DEVICE 2u

/*
 * Fault switches: the module parameter `faults` is a mask of these bits, and
 * DMAHIL_IOC_INFO reports it.  Each bit reproduces one fault of the
 * controller's catalogue (sim/faults.cc; the catalogue id is named on each
 * bit) on the real kernel.  A switch acts only on mappings that hold a
 * foreign page (pfn != bfn); dom0's own pages stay correct.  The bit
 * positions are ABI: never renumber them.
 */

/*
 * Bit 0, catalogue id dma-ops-bypass-xen: the segments report, and the engine
 * drives, page_to_phys() of the page (the foreign page's dom0 pfn) instead of
 * the DMA API's bus address (its bfn).  The real mapping is still made and
 * unmapped.  Such a segment is not the page's bus address, so it is marked
 * DMAHIL_SEG_WRITE_REFUSED like any other wrong one: the engine may read it,
 * never write it.
 */
#define DMAHIL_FAULT_BYPASS 0x1u

/*
 * Bit 1, catalogue id unmap-no-invalidate-foreign: map and unmap with
 * DMA_ATTR_SKIP_CPU_SYNC, so no GNTTABOP_cache_flush is issued for the
 * foreign page.  The unmap of a DMA_FROM_DEVICE mapping loses its invalidate
 * as in that fault; the map loses its clean too (DMA_TO_DEVICE reads stale
 * memory, the symptom of sync-for-device-cpu-op).  SYNC ioctls are
 * unaffected.
 */
#define DMAHIL_FAULT_SKIP_CPU_SYNC 0x2u

/*
 * Bit 2, catalogue id cache-flush-local-addr: map with DMA_ATTR_SKIP_CPU_SYNC,
 * then dma_sync_single_for_device() one page (4096 bytes) past each segment's
 * bus address: the maintenance is issued, at the wrong address (the
 * catalogue's fault issues it at the pfn's address).  SYNC ioctls on the
 * mapping are misaddressed the same way; unmap is normal.
 */
#define DMAHIL_FAULT_SYNC_MISADDRESS 0x4u

/*
 * Bit 3, catalogue id bounce-no-copy-back: unmap a mapping that is not
 * DMA_TO_DEVICE with DMA_ATTR_SKIP_CPU_SYNC, so swiotlb_tbl_unmap_single()
 * does not copy a bounce buffer back to the page (kernel/dma/swiotlb.c); on
 * a non-coherent device the unmap's invalidate is lost as well.  It shows
 * where the mapping was bounced (a device mask below the page, or dom0
 * booted with swiotlb=force).
 */
#define DMAHIL_FAULT_NO_COPY_BACK 0x8u

/*
 * A watched device (DMAHIL_IOC_WATCH) gets the same bits on the mappings its
 * driver makes of foreign pages (pfn != bfn), as the historical bugs
 * treated them, through the wrappers of dev_audit.c:
 *   BYPASS          a DMA_TO_DEVICE mapping not bounced hands the driver
 *                   phys_to_dma() of the page's dom0 physical address; the
 *                   device only reads there.  Unmap and sync get the real
 *                   address back.  Never on a mapping the device writes.
 *   SKIP_CPU_SYNC   the unmap of a mapping not bounced that is not
 *                   DMA_TO_DEVICE skips its for-cpu maintenance (the
 *                   invalidate): a read-path fault only.
 *   SYNC_MISADDRESS the map's for-device maintenance of a page not bounced
 *                   is issued one 4 KiB page past its bus address.
 *   NO_COPY_BACK    the unmap of a bounced mapping that is not
 *                   DMA_TO_DEVICE skips the copy back.
 */

/**
 * struct dmahil_info - the module's state (DMAHIL_IOC_INFO)
 * @abi_version: out: DMAHIL_ABI_VERSION
 * @faults: out: the DMAHIL_FAULT_* bits in effect
 * @coherent: out: 1 if the engine's struct device is DMA-coherent
 * @engine_bound: out: 1 if the edu device is bound and not wedged (no DMA
 *	timed out)
 * @dma_mask: out: the engine's current DMA mask
 * @audit_hypercall: out: 1 if the GNTTABOP_cache_flush kprobe is armed
 * @audit_arch_sync: out: 1 if the arch_sync_dma_* kprobes are armed
 * @engine: out: NUL-terminated, e.g. "edu 0000:00:01.0"
 */
struct dmahil_info {
	__u32 abi_version;
	__u32 faults;
	__u32 coherent;
	__u32 engine_bound;
	__u64 dma_mask;
	__u32 audit_hypercall;
	__u32 audit_arch_sync;
	char engine[32];
};

/* struct dmahil_cache_op.op: the GNTTAB_CACHE_* values */
#define DMAHIL_CACHE_CLEAN 0x1u	/* GNTTAB_CACHE_CLEAN */
#define DMAHIL_CACHE_INVAL 0x2u	/* GNTTAB_CACHE_INVAL */
/* struct dmahil_cache_op.kind */
#define DMAHIL_OP_HYPERCALL 1u	/* GNTTABOP_cache_flush: machine address */
#define DMAHIL_OP_ARCH_SYNC 2u	/* arch_sync_dma_for_*: physical address */

/**
 * struct dmahil_cache_op - one cache-maintenance operation the kernel issued
 * @addr: machine (DMAHIL_OP_HYPERCALL) or physical (DMAHIL_OP_ARCH_SYNC)
 *	address, offset in the page included
 * @length: bytes
 * @op: DMAHIL_CACHE_CLEAN and/or DMAHIL_CACHE_INVAL
 * @kind: DMAHIL_OP_*
 * @pad: zero
 */
struct dmahil_cache_op {
	__u64 addr;
	__u32 length;
	__u32 op;
	__u32 kind;
	__u32 pad;
};

/**
 * struct dmahil_ops_out - where an ioctl returns the maintenance it caused
 * @ptr: in: user pointer to struct dmahil_cache_op[@cap]
 * @cap: in: capacity of @ptr (may be 0)
 * @count: out: records written (<= @cap)
 * @dropped: out: records that did not fit
 * @pad: zero
 */
struct dmahil_ops_out {
	__u64 ptr;
	__u32 cap;
	__u32 count;
	__u32 dropped;
	__u32 pad;
};

/* struct dmahil_pin.flags */
/*
 * DMAHIL_PIN_SPARSE: page i of the pin is the first 4 KiB of the Linux page
 * at @uaddr + i * PAGE_SIZE (a gntdev or gntalloc mapping: one grant per
 * Linux page); without it, page i is at @uaddr + i * 4096 (anonymous memory).
 * The two are the same when PAGE_SIZE is 4096.
 */
#define DMAHIL_PIN_SPARSE 0x1u

/**
 * struct dmahil_pin - pin user pages (DMAHIL_IOC_PIN)
 * @uaddr: in: PAGE_SIZE-aligned user address
 * @pages: in: 4 KiB pages, 1..DMAHIL_MAX_PIN_PAGES
 * @pin: out: handle, never 0
 * @pfns_ptr: in: user pointer to __u64[@pages] (0: not wanted); out: each
 *	4 KiB page's dom0 frame number, XEN_PFN_DOWN() of its physical address
 * @bfns_ptr: in: user pointer to __u64[@pages] (0: not wanted); out:
 *	pfn_to_bfn() of each of those frames (4 KiB units)
 * @flags: in: DMAHIL_PIN_* (others: EINVAL)
 * @page_size: out: the kernel's PAGE_SIZE, bytes
 *
 * The Linux pages that hold the 4 KiB pages are pinned with
 * pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM), which works on a gntdev
 * mapping (VM_MIXEDMAP) and on anonymous memory.  The offsets of
 * DMAHIL_IOC_MAP count 4 KiB pages of the pin, wherever DMAHIL_PIN_SPARSE
 * puts them in user space.
 */
struct dmahil_pin {
	__u64 uaddr;
	__u32 pages;
	__u32 pin;
	__u64 pfns_ptr;
	__u64 bfns_ptr;
	__u32 flags;
	__u32 page_size;
};

/**
 * struct dmahil_seg - one mapped segment (at most one 4 KiB page)
 * @offset: bytes into the pin (4 KiB pages, see struct dmahil_pin)
 * @dma_addr: the dma_addr_t the device must use
 * @pfn: dom0 frame of the segment's 4 KiB page, XEN_PFN_DOWN() of its
 *	physical address
 * @bfn: pfn_to_bfn(@pfn), 4 KiB units
 * @length: bytes
 * @flags: DMAHIL_SEG_*
 *
 * DMAHIL_SEG_WRITE_REFUSED is the module's own judgement of @dma_addr, made
 * when the segment is mapped and kept for the mapping's life: the engine may
 * write the segment only if @dma_addr is the bus address the page should have
 * and the device reaches all of it.  The expected address is computed by the
 * module, not taken from the DMA API under test: phys_to_dma() of the page's
 * machine address (pfn_to_bfn() of its 4 KiB frame, plus the offset in that
 * frame), as xen_phys_to_dma() in drivers/xen/swiotlb-xen.c; or, for a
 * segment the DMA API bounced, any address whose dma_to_phys() range lies
 * inside the device's swiotlb pool (is_swiotlb_buffer()).  In both cases
 * the segment's last byte must be within dma_capable()'s limit,
 * min_not_zero(*dev->dma_mask, dev->bus_dma_limit)
 * (include/linux/dma-direct.h).  A segment that fails is reported with the
 * flag set; DMAHIL_IOC_XFER reads it, but a write into it fails with EACCES,
 * whatever produced the address (a kernel under test, or a DMAHIL_FAULT_*
 * switch).
 */
struct dmahil_seg {
	__u64 offset;
	__u64 dma_addr;
	__u64 pfn;
	__u64 bfn;
	__u32 length;
	__u32 flags;
};

#define DMAHIL_SEG_FOREIGN 0x1u	/* pfn != bfn */
#define DMAHIL_SEG_BOUNCED 0x2u	/* dma_addr is a slot of the swiotlb pool */
/* the engine may not write the segment: see struct dmahil_seg */
#define DMAHIL_SEG_WRITE_REFUSED 0x4u
/*
 * DMAHIL_SEG_BFN_PFN_VALID: a foreign segment whose bus frame is pfn_valid()
 * in dom0 (an early section is valid across its whole span), so swiotlb-xen
 * maintains it by address (arch_sync_dma_*) as if it were dom0's own page.
 */
#define DMAHIL_SEG_BFN_PFN_VALID 0x8u

/**
 * struct dmahil_map - map part of a pin for the engine (DMAHIL_IOC_MAP)
 * @pin: in: the pin's handle
 * @direction: in: DMAHIL_DMA_*
 * @offset: in: bytes into the pin
 * @length: in: bytes, > 0, @offset + @length <= pages * 4096
 * @sg: in: 0: one dma_map_page() per 4 KiB page; 1: one dma_map_sg() with
 *	one entry per 4 KiB page
 * @mask_bits: in: 0: the engine's own mask (module parameter dma_bits);
 *	else 32..64, given to dma_set_mask_and_coherent()
 * @mapping: out: handle, never 0
 * @nsegs: in: capacity of @segs_ptr; out: segments written
 * @segs_ptr: in: user pointer to struct dmahil_seg[@nsegs]
 * @ops: the maintenance the map issued
 */
struct dmahil_map {
	__u32 pin;
	__u32 direction;
	__u64 offset;
	__u64 length;
	__u32 sg;
	__u32 mask_bits;
	__u32 mapping;
	__u32 nsegs;
	__u64 segs_ptr;
	struct dmahil_ops_out ops;
};

#define DMAHIL_SYNC_FOR_CPU 1u
#define DMAHIL_SYNC_FOR_DEVICE 2u

/**
 * struct dmahil_sync - sync a mapping (DMAHIL_IOC_SYNC)
 * @mapping: in: the mapping's handle
 * @for_: in: DMAHIL_SYNC_FOR_*
 * @ops: the maintenance the sync issued
 */
struct dmahil_sync {
	__u32 mapping;
	__u32 for_;
	struct dmahil_ops_out ops;
};

/**
 * struct dmahil_unmap - unmap a mapping (DMAHIL_IOC_UNMAP)
 * @mapping: in: the mapping's handle
 * @pad: zero
 * @ops: the maintenance the unmap issued
 */
struct dmahil_unmap {
	__u32 mapping;
	__u32 pad;
	struct dmahil_ops_out ops;
};

#define DMAHIL_XFER_READ 1u	/* device reads memory at dma_addr into uaddr */
#define DMAHIL_XFER_WRITE 2u	/* device writes uaddr's bytes to dma_addr */

/**
 * struct dmahil_xfer - an engine transfer (DMAHIL_IOC_XFER)
 * @dma_addr: in: bus address
 * @uaddr: in: user buffer
 * @length: in: 1..DMAHIL_MAX_XFER_BYTES
 * @op: in: DMAHIL_XFER_*
 *
 * The engine moves @length bytes between bus address @dma_addr and the user
 * buffer @uaddr.  The whole range must lie inside one segment of a live
 * mapping, for DMAHIL_XFER_WRITE one without DMAHIL_SEG_WRITE_REFUSED
 * (EACCES otherwise).  On edu it goes through a module-owned staging
 * page and edu's 4 KiB buffer.
 */
struct dmahil_xfer {
	__u64 dma_addr;
	__u64 uaddr;
	__u32 length;
	__u32 op;
};

/*
 * The DMA-API audit of a real device (dev_audit.c): DMAHIL_IOC_WATCH puts a
 * copy of the DMA-mapping ops the kernel installed for a named device (under
 * Xen on Arm, swiotlb-xen's xen_swiotlb_dma_ops) in front of them; each op
 * of that device is forwarded unchanged and recorded, in any context (the
 * driver maps in kthreads and workqueues and unmaps in interrupts), with the
 * cache maintenance the kprobes of audit.c saw the kernel issue while it ran.
 * DMAHIL_IOC_WATCH_READ drains the records.
 */

/* struct dmahil_dev_op.op */
#define DMAHIL_DEV_MAP 1u	/* map_page, or one entry of a map_sg */
#define DMAHIL_DEV_UNMAP 2u	/* unmap_page, or one entry of an unmap_sg */
#define DMAHIL_DEV_SYNC_FOR_CPU 3u	/* sync_single/sg_for_cpu (an entry) */
#define DMAHIL_DEV_SYNC_FOR_DEVICE 4u	/* sync_single/sg_for_device */
/* cache maintenance the kernel issued inside the op call @call */
#define DMAHIL_DEV_MAINT 5u

/**
 * struct dmahil_dev_op - one record of a watched device's DMA-API traffic
 * @call: the op call it belongs to (numbered from 1 per watch): every
 *	record of one map_sg, and the maintenance issued inside it, share it
 * @dma_addr: MAP: the dma_addr_t the kernel returned; UNMAP and SYNC_*: the
 *	one the driver passed; MAINT: the maintenance's address (machine for
 *	DMAHIL_OP_HYPERCALL, physical for DMAHIL_OP_ARCH_SYNC)
 * @pfn: MAP: dom0 frame of the first byte, XEN_PFN_DOWN(page_to_phys(page)
 *	+ offset); else 0
 * @bfn: MAP: pfn_to_bfn(@pfn); else 0
 * @expected: MAP: the bus address of the first byte, computed by the module
 *	and not by the ops under test: phys_to_dma() of (@bfn << 12) plus the
 *	offset in the frame, as xen_phys_to_dma() in drivers/xen/swiotlb-xen.c;
 *	else 0
 * @length: bytes
 * @op: DMAHIL_DEV_*
 * @dir: DMAHIL_DMA_*; MAINT: DMAHIL_CACHE_CLEAN and/or DMAHIL_CACHE_INVAL
 * @flags: MAP: DMAHIL_SEG_FOREIGN, DMAHIL_SEG_BOUNCED (@dma_addr is a slot
 *	of the device's swiotlb pool), DMAHIL_SEG_BFN_PFN_VALID; MAINT: its
 *	DMAHIL_OP_* kind; else 0
 *
 * Units as everywhere in this ABI: bytes, and 4 KiB frame numbers.
 */
struct dmahil_dev_op {
	__u64 call;
	__u64 dma_addr;
	__u64 pfn;
	__u64 bfn;
	__u64 expected;
	__u32 length;
	__u32 op;
	__u32 dir;
	__u32 flags;
};

/**
 * struct dmahil_watch - start or stop watching a device (DMAHIL_IOC_WATCH)
 * @device: in: NUL-terminated dev_name() of a PCI device, e.g.
 *	"0000:00:03.0"; ignored when @on is 0
 * @on: in: 1: start (the records so far are discarded); 0: stop
 * @direct: out: 1 if the device has no DMA-mapping ops (get_dma_ops() is
 *	NULL: dma-direct maps it, bypassing swiotlb-xen, so a foreign page gets
 *	its dom0 pfn's address).  Nothing can be interposed on or recorded;
 *	the watch holds the device all the same.  Must be 0 in.
 *
 * One device at a time (EBUSY), and only by the file that started it; the
 * watch ends when that file is closed.
 */
struct dmahil_watch {
	char device[32];
	__u32 on;
	__u32 direct;
};

/**
 * struct dmahil_watch_read - take the records so far (DMAHIL_IOC_WATCH_READ)
 * @ptr: in: user pointer to struct dmahil_dev_op[@cap]
 * @cap: in: capacity of @ptr
 * @count: out: records written, oldest first; they are removed
 * @dropped: out: records lost since the last read because the module's
 *	buffer was full (DMAHIL_DEV_RECORDS)
 * @pad: zero
 */
struct dmahil_watch_read {
	__u64 ptr;
	__u32 cap;
	__u32 count;
	__u32 dropped;
	__u32 pad;
};

#define DMAHIL_DEV_RECORDS 16384u	/* records the module keeps */

#define DMAHIL_IOC_MAGIC 'D'
#define DMAHIL_IOC_INFO _IOR(DMAHIL_IOC_MAGIC, 0x00, struct dmahil_info)
#define DMAHIL_IOC_PIN _IOWR(DMAHIL_IOC_MAGIC, 0x01, struct dmahil_pin)
#define DMAHIL_IOC_UNPIN _IOW(DMAHIL_IOC_MAGIC, 0x02, __u32)
#define DMAHIL_IOC_MAP _IOWR(DMAHIL_IOC_MAGIC, 0x03, struct dmahil_map)
#define DMAHIL_IOC_SYNC _IOWR(DMAHIL_IOC_MAGIC, 0x04, struct dmahil_sync)
#define DMAHIL_IOC_UNMAP _IOWR(DMAHIL_IOC_MAGIC, 0x05, struct dmahil_unmap)
#define DMAHIL_IOC_XFER _IOW(DMAHIL_IOC_MAGIC, 0x06, struct dmahil_xfer)
#define DMAHIL_IOC_WATCH _IOWR(DMAHIL_IOC_MAGIC, 0x07, struct dmahil_watch)
#define DMAHIL_IOC_WATCH_READ \
	_IOWR(DMAHIL_IOC_MAGIC, 0x08, struct dmahil_watch_read)

#endif /* DMAHIL_UAPI_H */
