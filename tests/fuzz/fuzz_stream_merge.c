/* Fuzzes the merge of QEMU's device-state stream with the guest's memory (remus/image.c,
 * remus_stream_merge), which parses the stream a checkpoint carried. Input: the memory's size
 * in pages (byte 0), which of its pages are not zero (byte 1, bit i for page i modulo 8),
 * then the stream. The memory is allocated to its exact size, so reads past it are caught. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/remus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *out;
    if (!out && !(out = fopen("/dev/null", "we")))
        abort();
    if (size < 2)
        return 0;
    size_t pages = data[0], ram_size = pages * REMUS_PAGE;
    unsigned char *ram = malloc(ram_size ? ram_size : 1);
    if (!ram)
        abort();
    for (size_t i = 0; i < pages; i++)
        memset(ram + i * REMUS_PAGE, data[1] >> (i % 8) & 1 ? (int)(i + 1) : 0, REMUS_PAGE);
    struct vmha_err err = {0};
    remus_stream_merge(data + 2, size - 2, ram, ram_size, out, &err);
    clearerr(out);
    free(ram);
    return 0;
}
