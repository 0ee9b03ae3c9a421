/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmahil.ko internals shared by dmahil_main.c (misc device, pins, mappings, ioctls),
 * edu.c (QEMU's edu PCI device as the DMA engine) and audit.c (the cache-maintenance
 * audit kprobes).  The user ABI is dmahil_uapi.h.
 */
#ifndef DMAHIL_H
#define DMAHIL_H

#include <linux/device.h>
#include <linux/types.h>

#include "dmahil_uapi.h"

/* ---- edu.c ------------------------------------------------------------------------ */
int dmahil_edu_register(void);
void dmahil_edu_unregister(void);
/* The bound engine's struct device, or NULL. Stable while dmahil_lock is held. */
struct device* dmahil_edu_dev(void);
/* "edu 0000:00:01.0" into buf[len] (empty if unbound). */
void dmahil_edu_name(char* buf, size_t len);
/*
 * Move `len` bytes (1..DMAHIL_MAX_XFER_BYTES) between bus address `dma_addr` and the
 * user buffer `ubuf` with the engine; `op` is DMAHIL_XFER_READ or DMAHIL_XFER_WRITE.
 * 0 or -EFAULT / -EIO (engine timeout) / -ENODEV.  Caller holds dmahil_lock.
 */
int dmahil_edu_xfer(u64 dma_addr, void __user* ubuf, u32 len, u32 op);
/* The device's own DMA mask (module parameter dma_bits), bits. */
u32 dmahil_edu_dma_bits(void);
/* A DMA timed out: every transfer is refused from then on. */
bool dmahil_edu_wedged(void);

/* ---- audit.c ---------------------------------------------------------------------- */
void dmahil_audit_init(void);
void dmahil_audit_exit(void);
bool dmahil_audit_hypercall_armed(void);
bool dmahil_audit_arch_sync_armed(void);
/*
 * Start recording the maintenance `current` causes, into a buffer of `cap` records
 * (records past `cap`, or past the module's 4096-record buffer, count as dropped).
 * Only one recording at a time: the caller holds dmahil_lock.
 */
void dmahil_audit_begin(u32 cap);
/* Stop recording; return the records (valid until the next begin) and counts. */
const struct dmahil_cache_op* dmahil_audit_end(u32* count, u32* dropped);

/* ---- dmahil_main.c ---------------------------------------------------------------- */
extern struct mutex dmahil_lock; /* serialises every ioctl, release and engine (un)bind */

#endif /* DMAHIL_H */
