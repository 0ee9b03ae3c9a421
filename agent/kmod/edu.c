// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU's `edu` PCI device (hw/misc/edu.c, QEMU 7.2) as the DMA engine.
 *
 * BAR0 registers used: 0x00 identification (0xRRrr00ed), 0x80 DMA source, 0x88 DMA
 * destination, 0x90 DMA count (bytes), 0x98 DMA command (bit 0 start, cleared by the
 * device when done; bit 1 direction: set = edu buffer -> RAM, clear = RAM -> edu buffer).
 * The edu buffer is 4 KiB at device address 0x40000 and the CPU has no window onto it,
 * so every transfer is two DMAs through a module-owned dma_alloc_coherent staging page:
 *   READ  (device reads RAM):  RAM(dma_addr) -> edu buf, edu buf -> staging, copy_to_user
 *   WRITE (device writes RAM): copy_from_user -> staging, staging -> edu buf, edu buf -> RAM
 * QEMU 7.2 aborts (hw_error "EDU: DMA range ... out of bounds") when a transfer reaches
 * the buffer's last byte (edu_check_range() needs end < 0x41000), so data moves in
 * <= 2048-byte chunks through edu[0x40000, 0x40800).  The device completes a DMA on a
 * 100 ms QEMU_CLOCK_VIRTUAL timer: ~100 ms per chunk and direction.
 *
 * The address registers are written with one 8-byte access (writeq): edu_mmio_write()
 * ignores 0x84/0x8c, so two 4-byte halves would leave a zero-extended low half and the
 * device would drive another address than the window the module checked.  A DMA that
 * times out is still armed in QEMU and may land later: the engine is then wedged, every
 * later transfer is refused with -EIO, and INFO says so (the board goes offline).
 *
 * Module parameter `dma_bits` (default 64): the device's own DMA mask, which must match
 * QEMU's `-device edu,dma_mask=` (QEMU clamps every address the device drives to it).
 * A MAP with mask_bits 0 restores it, so a fixture's mask never leaks into the next.
 */
#include <linux/delay.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/uaccess.h>

#include "dmahil.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_REG_ID 0x00
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_CNT 0x90
#define EDU_REG_DMA_CMD 0x98
#define EDU_CMD_START 0x1u
#define EDU_CMD_TO_RAM 0x2u /* direction: edu buffer -> RAM */
#define EDU_BUF_ADDR 0x40000ull
#define EDU_CHUNK 2048u          /* bytes per DMA: never reaches the buffer's last byte */
#define EDU_DMA_TIMEOUT_MS 5000u /* one DMA takes ~100 ms of virtual time */
#define EDU_STAGING_BYTES 4096u  /* one page; only EDU_CHUNK of it is used at a time */

struct edu {
  struct pci_dev* pdev;
  void __iomem* regs;
  void* staging; /* EDU_STAGING_BYTES, coherent */
  dma_addr_t staging_dma;
};

static struct edu* edu; /* the bound engine; changes only under dmahil_lock */
static bool edu_wedged;  /* a DMA timed out and may still land: refuse every transfer */

static unsigned int dma_bits = 64;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits, "the edu device's DMA mask in bits (32..64), as QEMU's edu,dma_mask=");

u32 dmahil_edu_dma_bits(void) { return dma_bits; }
bool dmahil_edu_wedged(void) { return edu_wedged; }

struct device* dmahil_edu_dev(void) {
  return edu ? &edu->pdev->dev : NULL;
}

void dmahil_edu_name(char* buf, size_t len) {
  if (edu)
    snprintf(buf, len, "edu %s", pci_name(edu->pdev));
  else if (len)
    buf[0] = '\0';
}

/* One edu DMA of `cnt` bytes; 0 or -EIO on timeout. */
static int edu_dma(u64 src, u64 dst, u32 cnt, u32 to_ram) {
  unsigned long deadline;

  writeq(src, edu->regs + EDU_REG_DMA_SRC);
  writeq(dst, edu->regs + EDU_REG_DMA_DST);
  writeq(cnt, edu->regs + EDU_REG_DMA_CNT);
  if (readq(edu->regs + EDU_REG_DMA_SRC) != src || readq(edu->regs + EDU_REG_DMA_DST) != dst) {
    dev_err(&edu->pdev->dev, "edu kept DMA %#llx -> %#llx as %#llx -> %#llx: not started\n",
            src, dst, readq(edu->regs + EDU_REG_DMA_SRC), readq(edu->regs + EDU_REG_DMA_DST));
    return -EIO;
  }
  /* the command register must be written last: it starts the 100 ms timer */
  writel(EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0), edu->regs + EDU_REG_DMA_CMD);
  deadline = jiffies + msecs_to_jiffies(EDU_DMA_TIMEOUT_MS);
  while (readl(edu->regs + EDU_REG_DMA_CMD) & EDU_CMD_START) {
    if (time_after(jiffies, deadline)) {
      dev_err(&edu->pdev->dev,
              "edu DMA %#llx -> %#llx (%u bytes) timed out after %u ms: engine wedged\n", src,
              dst, cnt, EDU_DMA_TIMEOUT_MS);
      edu_wedged = true;
      return -EIO;
    }
    usleep_range(2000, 5000);
  }
  rmb(); /* the device's writes (to the staging page) before the CPU reads them */
  return 0;
}

int dmahil_edu_xfer(u64 dma_addr, void __user* ubuf, u32 len, u32 op) {
  u32 off, n;
  int err;

  if (!edu) return -ENODEV;
  if (edu_wedged) return -EIO;
  for (off = 0; off < len; off += n) {
    n = min(len - off, EDU_CHUNK);
    if (op == DMAHIL_XFER_READ) {
      err = edu_dma(dma_addr + off, EDU_BUF_ADDR, n, 0);
      if (!err) err = edu_dma(EDU_BUF_ADDR, edu->staging_dma, n, 1);
      if (err) return err;
      if (copy_to_user(ubuf + off, edu->staging, n)) return -EFAULT;
    } else {
      if (copy_from_user(edu->staging, ubuf + off, n)) return -EFAULT;
      wmb(); /* the staging page before the device reads it */
      err = edu_dma(edu->staging_dma, EDU_BUF_ADDR, n, 0);
      if (!err) err = edu_dma(EDU_BUF_ADDR, dma_addr + off, n, 1);
      if (err) return err;
    }
  }
  return 0;
}

static int edu_probe(struct pci_dev* pdev, const struct pci_device_id* id) {
  struct edu* e;
  u32 ident;
  int err;

  e = devm_kzalloc(&pdev->dev, sizeof(*e), GFP_KERNEL);
  if (!e) return -ENOMEM;
  e->pdev = pdev;
  err = pcim_enable_device(pdev);
  if (err) {
    dev_err(&pdev->dev, "dmahil: pcim_enable_device failed (%d)\n", err);
    return err;
  }
  err = pcim_iomap_regions(pdev, BIT(0), "dmahil-edu");
  if (err) {
    dev_err(&pdev->dev, "dmahil: cannot map BAR0 (%d)\n", err);
    return err;
  }
  e->regs = pcim_iomap_table(pdev)[0];
  ident = readl(e->regs + EDU_REG_ID);
  if ((ident & 0xff) != 0xed) {
    dev_err(&pdev->dev, "dmahil: identification register %#x is not edu's 0x..ed\n", ident);
    return -ENODEV;
  }
  pci_set_master(pdev);
  /* the staging page under a 32-bit mask, so it stays reachable whatever mask MAP sets */
  err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
  if (!err) {
    e->staging = dmam_alloc_coherent(&pdev->dev, EDU_STAGING_BYTES, &e->staging_dma, GFP_KERNEL);
    if (!e->staging) err = -ENOMEM;
  }
  if (err) {
    dev_err(&pdev->dev, "dmahil: no coherent staging page (%d)\n", err);
    return err;
  }
  /* QEMU's edu takes dma_mask=; dma_bits must say the same */
  if (dma_bits < 32 || dma_bits > 64) {
    dev_err(&pdev->dev, "dmahil: dma_bits=%u: must be 32..64\n", dma_bits);
    return -EINVAL;
  }
  err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(dma_bits));
  if (err) {
    dev_err(&pdev->dev, "dmahil: %u-bit DMA mask refused (%d)\n", dma_bits, err);
    return err;
  }
  mutex_lock(&dmahil_lock);
  if (edu) {
    mutex_unlock(&dmahil_lock);
    dev_info(&pdev->dev, "dmahil: an edu is already bound (%s): not binding this one\n",
             pci_name(edu->pdev));
    return -EBUSY;
  }
  edu = e;
  mutex_unlock(&dmahil_lock);
  pci_set_drvdata(pdev, e);
  dev_info(&pdev->dev, "dmahil: edu %#x bound, %s, staging page at bus %pad\n", ident,
           dev_is_dma_coherent(&pdev->dev) ? "dma-coherent" : "NOT dma-coherent", &e->staging_dma);
  return 0;
}

static void edu_remove(struct pci_dev* pdev) {
  mutex_lock(&dmahil_lock);
  if (edu == pci_get_drvdata(pdev)) edu = NULL;
  mutex_unlock(&dmahil_lock);
}

static const struct pci_device_id edu_ids[] = {{PCI_DEVICE(EDU_VENDOR, EDU_DEVICE)}, {}};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
    .name = "dmahil-edu",
    .id_table = edu_ids,
    .probe = edu_probe,
    .remove = edu_remove,
};

int dmahil_edu_register(void) { return pci_register_driver(&edu_driver); }
void dmahil_edu_unregister(void) { pci_unregister_driver(&edu_driver); }
