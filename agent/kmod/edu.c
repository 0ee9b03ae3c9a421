// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU's edu PCI device (hw/misc/edu.c, QEMU 7.2) as the DMA engine.
 *
 * BAR0 registers used: 0x00 identification (0xRRrr00ed), 0x80 DMA source,
 * 0x88 DMA destination, 0x90 DMA count (bytes), 0x98 DMA command (bit 0
 * start, cleared by the device when done; bit 1 direction: set = edu buffer
 * to RAM, clear = RAM to edu buffer).
 *
 * The edu buffer is 4 KiB at device address 0x40000 and the CPU has no
 * window onto it, so every transfer is two DMAs through a module-owned
 * dma_alloc_coherent() staging page:
 *   READ  (device reads RAM):  RAM(dma_addr) -> edu buffer -> staging,
 *                              then copy_to_user()
 *   WRITE (device writes RAM): copy_from_user() -> staging -> edu buffer
 *                              -> RAM(dma_addr)
 * QEMU 7.2 aborts (hw_error "EDU: DMA range ... out of bounds") when a
 * transfer reaches the buffer's last byte: edu_check_range() needs
 * end < 0x41000, so one DMA moves at most 4095 bytes and a 4 KiB page needs
 * two DMAs per hop whatever the split.  Data moves in chunks of at most 2048
 * bytes through edu[0x40000, 0x40800).  The device completes a DMA on a
 * 100 ms QEMU_CLOCK_VIRTUAL timer: ~100 ms of virtual time per chunk and hop.
 *
 * The address registers are written with one 8-byte access (writeq):
 * edu_mmio_write() ignores 0x84 and 0x8c, so two 4-byte halves would leave a
 * zero-extended low half and the device would drive another address than the
 * window the module checked.  A DMA that times out is still armed in QEMU and
 * may land later: the engine is then wedged, every later transfer is refused
 * with -EIO, and DMAHIL_IOC_INFO says so (the board goes offline).
 *
 * Module parameter dma_bits (default 64): the device's own DMA mask, which
 * must match QEMU's -device edu,dma_mask= (QEMU clamps every address the
 * device drives to it).  A DMAHIL_IOC_MAP with mask_bits 0 restores it, so a
 * fixture's mask never leaks into the next.
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
#define EDU_CMD_TO_RAM 0x2u	/* direction: edu buffer -> RAM */
#define EDU_BUF_ADDR 0x40000ull
/* bytes per DMA: never the buffer's last byte */
#define EDU_CHUNK 2048u
/* edu finishes a DMA this long (QEMU_CLOCK_VIRTUAL) after its command */
#define EDU_DMA_MS 100u
/* then the wait gives up: the engine is wedged */
#define EDU_DMA_TIMEOUT_MS 5000u
#define EDU_STAGING_BYTES 4096u	/* one page; EDU_CHUNK of it used at a time */

/**
 * struct edu - the bound edu device
 * @pdev: its PCI device
 * @regs: BAR0
 * @staging: EDU_STAGING_BYTES of coherent memory, under a 32-bit mask
 * @staging_dma: @staging's bus address
 */
struct edu {
	struct pci_dev *pdev;
	void __iomem *regs;
	void *staging;
	dma_addr_t staging_dma;
};

/* the bound engine; changes only under dmahil_lock */
static struct edu *edu;
/* a DMA timed out and may still land: refuse every transfer */
static bool edu_wedged;

static unsigned int dma_bits = 64;
module_param(dma_bits, uint, 0444);
MODULE_PARM_DESC(dma_bits,
		 "the edu device's DMA mask in bits (32..64), as QEMU's edu,dma_mask=");

/**
 * dmahil_edu_dma_bits() - the engine's own DMA mask
 *
 * Return: the module parameter dma_bits, in bits.
 */
u32 dmahil_edu_dma_bits(void)
{
	return dma_bits;
}

/**
 * dmahil_edu_wedged() - whether a DMA timed out
 *
 * Return: true once a DMA has timed out; every transfer is refused from then
 * on.
 */
bool dmahil_edu_wedged(void)
{
	return edu_wedged;
}

/**
 * dmahil_edu_dev() - the bound engine's struct device
 *
 * Context: stable while dmahil_lock is held.
 * Return: the device, or NULL if no edu is bound.
 */
struct device *dmahil_edu_dev(void)
{
	return edu ? &edu->pdev->dev : NULL;
}

/**
 * dmahil_edu_name() - the bound engine's name
 * @buf: where to write it, NUL-terminated, e.g. "edu 0000:00:01.0"
 * @len: size of @buf
 *
 * Writes an empty string if no edu is bound.
 */
void dmahil_edu_name(char *buf, size_t len)
{
	if (edu)
		snprintf(buf, len, "edu %s", pci_name(edu->pdev));
	else if (len)
		buf[0] = '\0';
}

/**
 * edu_dma() - one edu DMA, waited for
 * @src: source address (bus address, or an address in edu's buffer)
 * @dst: destination address (likewise)
 * @cnt: bytes, at most EDU_CHUNK
 * @to_ram: true: edu buffer to RAM; false: RAM to edu buffer
 *
 * Context: process context, dmahil_lock held, an edu bound.
 * Return: 0 when the device has finished; -EIO if it did not keep the
 * addresses (nothing started) or did not finish within EDU_DMA_TIMEOUT_MS
 * (the engine is then wedged).
 */
static int edu_dma(u64 src, u64 dst, u32 cnt, bool to_ram)
{
	unsigned long deadline;
	u32 cmd = EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0);

	writeq(src, edu->regs + EDU_REG_DMA_SRC);
	writeq(dst, edu->regs + EDU_REG_DMA_DST);
	writeq(cnt, edu->regs + EDU_REG_DMA_CNT);
	if (readq(edu->regs + EDU_REG_DMA_SRC) != src ||
	    readq(edu->regs + EDU_REG_DMA_DST) != dst) {
		dev_err(&edu->pdev->dev,
			"edu kept DMA %#llx -> %#llx as %#llx -> %#llx: not started\n",
			src, dst, readq(edu->regs + EDU_REG_DMA_SRC),
			readq(edu->regs + EDU_REG_DMA_DST));
		return -EIO;
	}
	/* the command register goes last: writing it starts the timer */
	writel(cmd, edu->regs + EDU_REG_DMA_CMD);
	deadline = jiffies + msecs_to_jiffies(EDU_DMA_TIMEOUT_MS);
	/*
	 * Sleep through edu's timer, then poll: one wake-up per DMA instead of
	 * dozens, which matters when QEMU runs with -icount sleep=off (every
	 * wake-up costs instructions, the sleep itself nothing).
	 */
	usleep_range(EDU_DMA_MS * USEC_PER_MSEC,
		     EDU_DMA_MS * USEC_PER_MSEC + 2000);
	while (readl(edu->regs + EDU_REG_DMA_CMD) & EDU_CMD_START) {
		if (time_after(jiffies, deadline)) {
			dev_err(&edu->pdev->dev,
				"edu DMA %#llx -> %#llx (%u bytes) timed out after %u ms: engine wedged\n",
				src, dst, cnt, EDU_DMA_TIMEOUT_MS);
			edu_wedged = true;
			return -EIO;
		}
		usleep_range(2000, 5000);
	}
	/* the device's writes (to staging) before the CPU reads them */
	rmb();
	return 0;
}

/**
 * dmahil_edu_xfer() - move bytes between a bus address and a user buffer
 * @dma_addr: bus address the device reads or writes
 * @ubuf: user buffer
 * @len: bytes, 1..DMAHIL_MAX_XFER_BYTES (the caller checks)
 * @op: DMAHIL_XFER_READ (the device reads @dma_addr into @ubuf) or
 *	DMAHIL_XFER_WRITE (the device writes @ubuf's bytes at @dma_addr)
 *
 * Moves the bytes EDU_CHUNK at a time, each chunk with two DMAs through edu's
 * buffer and the staging page.  The caller has checked that the range lies in
 * a live mapping.
 *
 * Context: process context, dmahil_lock held.
 * Return: 0 on success; -ENODEV if no edu is bound; -EIO if the engine is
 * wedged, refused a DMA or timed out; -EFAULT if @ubuf cannot be read or
 * written.  On an error, the chunks before it have moved.
 */
int dmahil_edu_xfer(u64 dma_addr, void __user *ubuf, u32 len, u32 op)
{
	u32 off, n;
	int err;

	if (!edu)
		return -ENODEV;
	if (edu_wedged)
		return -EIO;
	for (off = 0; off < len; off += n) {
		n = min(len - off, EDU_CHUNK);
		if (op == DMAHIL_XFER_READ) {
			err = edu_dma(dma_addr + off, EDU_BUF_ADDR, n, false);
			if (!err)
				err = edu_dma(EDU_BUF_ADDR, edu->staging_dma, n,
					      true);
			if (err)
				return err;
			if (copy_to_user(ubuf + off, edu->staging, n))
				return -EFAULT;
		} else {
			if (copy_from_user(edu->staging, ubuf + off, n))
				return -EFAULT;
			/* the staging page before the device reads it */
			wmb();
			err = edu_dma(edu->staging_dma, EDU_BUF_ADDR, n, false);
			if (!err)
				err = edu_dma(EDU_BUF_ADDR, dma_addr + off, n,
					      true);
			if (err)
				return err;
		}
	}
	return 0;
}

/**
 * edu_probe() - bind an edu device
 * @pdev: the device
 * @id: the matching entry of edu_ids
 *
 * Enables the device, maps BAR0, checks the identification register,
 * allocates the staging page under a 32-bit mask (so it stays reachable
 * whatever mask a mapping sets), then sets the dma_bits mask.  Only one edu
 * is bound.
 *
 * Return: 0 on success; -ENODEV if the identification register is not edu's;
 * -EINVAL if dma_bits is not 32..64; -EBUSY if an edu is already bound;
 * -ENOMEM, or the error of pcim_enable_device(), pcim_iomap_regions() or
 * dma_set_mask_and_coherent().
 */
static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu *e;
	u32 ident;
	int err;

	e = devm_kzalloc(&pdev->dev, sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	e->pdev = pdev;
	err = pcim_enable_device(pdev);
	if (err) {
		dev_err(&pdev->dev, "dmahil: pcim_enable_device failed (%d)\n",
			err);
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
		dev_err(&pdev->dev,
			"dmahil: identification register %#x is not edu's 0x..ed\n",
			ident);
		return -ENODEV;
	}
	pci_set_master(pdev);
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (!err) {
		e->staging = dmam_alloc_coherent(&pdev->dev, EDU_STAGING_BYTES,
						 &e->staging_dma, GFP_KERNEL);
		if (!e->staging)
			err = -ENOMEM;
	}
	if (err) {
		dev_err(&pdev->dev, "dmahil: no coherent staging page (%d)\n",
			err);
		return err;
	}
	/* QEMU's edu takes dma_mask=; dma_bits must say the same */
	if (dma_bits < 32 || dma_bits > 64) {
		dev_err(&pdev->dev, "dmahil: dma_bits=%u: must be 32..64\n",
			dma_bits);
		return -EINVAL;
	}
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(dma_bits));
	if (err) {
		dev_err(&pdev->dev, "dmahil: %u-bit DMA mask refused (%d)\n",
			dma_bits, err);
		return err;
	}
	mutex_lock(&dmahil_lock);
	if (edu) {
		mutex_unlock(&dmahil_lock);
		dev_info(&pdev->dev,
			 "dmahil: an edu is already bound (%s): not binding this one\n",
			 pci_name(edu->pdev));
		return -EBUSY;
	}
	edu = e;
	mutex_unlock(&dmahil_lock);
	pci_set_drvdata(pdev, e);
	dev_info(&pdev->dev,
		 "dmahil: edu %#x bound, %s, staging page at bus %pad\n", ident,
		 dev_is_dma_coherent(&pdev->dev) ? "dma-coherent" :
						   "NOT dma-coherent",
		 &e->staging_dma);
	return 0;
}

/**
 * edu_remove() - unbind an edu device
 * @pdev: the device
 *
 * Forgets the device if it is the bound engine; devres frees the rest.
 */
static void edu_remove(struct pci_dev *pdev)
{
	mutex_lock(&dmahil_lock);
	if (edu == pci_get_drvdata(pdev))
		edu = NULL;
	mutex_unlock(&dmahil_lock);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) },
	{}
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "dmahil-edu",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};

/**
 * dmahil_edu_register() - register the edu PCI driver
 *
 * Return: 0 or the error of pci_register_driver().
 */
int dmahil_edu_register(void)
{
	return pci_register_driver(&edu_driver);
}

/**
 * dmahil_edu_unregister() - unregister the edu PCI driver
 */
void dmahil_edu_unregister(void)
{
	pci_unregister_driver(&edu_driver);
}
