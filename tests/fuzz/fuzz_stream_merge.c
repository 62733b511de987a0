/* Fuzzes the libvirt backend's checkpoint image (hv/hv_libvirt_image.c, through hv_ckpt_image):
 * the merge of QEMU's device-state stream that a checkpoint carried with the guest's memory.
 * Input: the memory's size in pages (byte 0), which of its pages are not zero (byte 1, bit i
 * for page i modulo 8), then the stream, which gets a libvirt save header in front. The
 * memory and the device state are allocated to their exact sizes, so reads past them are
 * caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/hv.h"

#define PAGE 4096
#define SAVE_HDR 92 /* libvirt's save header, with an empty XML area */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *out;
    static const struct hv_backend *b;
    struct vmha_err err = {0};
    if (!out && !(out = fopen("/dev/null", "we")))
        abort();
    if (!b && hv_backend_for_uri("qemu:///system", &b, &err) < 0)
        abort();
    if (size < 2)
        return 0;
    size_t pages = data[0], ram_size = pages * PAGE, n = size - 2;
    unsigned char *ram = malloc(ram_size ? ram_size : 1), *dev = malloc(SAVE_HDR + n);
    if (!ram || !dev)
        abort();
    for (size_t i = 0; i < pages; i++)
        memset(ram + i * PAGE, data[1] >> (i % 8) & 1 ? (int)(i + 1) : 0, PAGE);
    uint32_t version = 2;
    memset(dev, 0, SAVE_HDR);
    memcpy(dev, "LibvirtQemudSave", 16);
    memcpy(dev + 16, &version, sizeof(version));
    memcpy(dev + SAVE_HDR, data + 2, n);
    hv_ckpt_image(b, dev, SAVE_HDR + n, ram, ram_size, out, &err);
    clearerr(out);
    free(dev);
    free(ram);
    return 0;
}
