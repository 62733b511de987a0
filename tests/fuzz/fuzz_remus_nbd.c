/* Fuzzes the NBD server that QEMU's disk mirror writes to (remus/nbd.c): the input is all
 * the client sends, handshake and requests. Every write the server hands on must lie inside
 * the export and be no longer than its bound (anything else aborts, as a finding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/remus.h"

#define EXPORT_SIZE (1ull << 20)

struct input {
    const uint8_t *p;
    size_t left;
};

static ssize_t in_read(void *opaque, void *buf, size_t n)
{
    struct input *in = opaque;
    n = n < in->left ? n : in->left;
    memcpy(buf, in->p, n);
    in->p += n;
    in->left -= n;
    return (ssize_t)n;
}

static int out_write(void *opaque, const void *buf, size_t n)
{
    (void)opaque;
    (void)buf;
    (void)n;
    return 0;
}

static int disk_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
    (void)opaque;
    if (off > EXPORT_SIZE || len > EXPORT_SIZE - off || len > REMUS_NBD_MAX_REQUEST) {
        fprintf(stderr, "fuzz_remus_nbd: a write outside the export\n");
        abort();
    }
    if (data && len > 0) {
        volatile unsigned char sink = ((const unsigned char *)data)[len - 1];
        (void)sink;
    }
    return off == 4096 ? -28 /* ENOSPC: the error path */ : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {.p = data, .left = size};
    struct remus_nbd_io io = {.read = in_read, .write = out_write, .opaque = &in};
    struct remus_nbd_export e = {.name = "vda", .size = EXPORT_SIZE, .write = disk_write};
    remus_nbd_serve(&io, &e);
    return 0;
}
