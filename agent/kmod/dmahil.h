/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmahil.ko internals shared by dmahil_main.c (misc device, pins, mappings,
 * ioctls), edu.c (QEMU's edu PCI device as the DMA engine), audit.c (the
 * cache-maintenance audit kprobes) and dev_audit.c (the DMA-API audit of a
 * real device).  The user ABI is dmahil_uapi.h.
 */
#ifndef DMAHIL_H
#define DMAHIL_H

#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include "dmahil_uapi.h"

/* edu.c */
int dmahil_edu_register(void);
void dmahil_edu_unregister(void);
struct device *dmahil_edu_dev(void);
void dmahil_edu_name(char *buf, size_t len);
int dmahil_edu_xfer(u64 dma_addr, void __user *ubuf, u32 len, u32 op);
u32 dmahil_edu_dma_bits(void);
bool dmahil_edu_wedged(void);

/* audit.c */
void dmahil_audit_init(void);
void dmahil_audit_exit(void);
bool dmahil_audit_hypercall_armed(void);
bool dmahil_audit_arch_sync_armed(void);
void dmahil_audit_begin(u32 cap);
const struct dmahil_cache_op *dmahil_audit_end(u32 *count, u32 *dropped);

/* dmahil_main.c */
u32 dmahil_faults(void);

/* dev_audit.c */
void dmahil_dev_audit_init(void);
void dmahil_dev_audit_exit(void);
bool dmahil_dev_call_active(void);
void dmahil_dev_audit_maint(u64 addr, u64 length, u32 op, u32 kind);
long dmahil_dev_watch(const void *owner, void __user *arg);
long dmahil_dev_watch_read(const void *owner, void __user *arg);
void dmahil_dev_audit_release(const void *owner);

/* dmahil_main.c: serialises every ioctl, the release and the engine's bind */
extern struct mutex dmahil_lock;

#endif /* DMAHIL_H */
