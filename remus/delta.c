/* A checkpoint's device state as a delta against the one before it (REMUS_BODY_DEVDELTA).
 *
 * QEMU's device state of a guest whose memory is a shared file still carries every RAM
 * block that is not that file whole: option ROMs, the firmware's flash (4.5 MiB with OVMF),
 * video memory. Between two checkpoints nearly all of it is the same bytes at the same
 * offsets, so the primary sends only the REMUS_DELTA_CHUNK-sized chunks that differ from the
 * device state of the checkpoint the backup holds, and the backup rebuilds the whole one
 * before it commits. Layout after the section header:
 *   be64 base length, be64 new length, then runs of (be64 offset, be64 length, bytes)
 * The base is the backup's committed device state: a delta only follows the epoch just
 * before it in a session (the receiver refuses anything else), and the sender takes as base
 * only a device state the backup acknowledged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/remus.h"

#define HEAD 16 /* base length, new length */
#define RUN 16  /* offset, length */

int remus_dev_delta_make(const unsigned char *base, size_t base_len, const unsigned char *cur,
                         size_t cur_len, unsigned char **ret, size_t *ret_len)
{
    /* At worst every chunk is a run of its own. */
    size_t chunks = (cur_len + REMUS_DELTA_CHUNK - 1) / REMUS_DELTA_CHUNK;
    unsigned char *d = malloc(HEAD + chunks * RUN + cur_len);
    if (!d)
        return -ENOMEM;
    remus_put_be64(d, base_len);
    remus_put_be64(d + 8, cur_len);
    size_t n = HEAD;
    for (size_t off = 0; off < cur_len;) {
        size_t len = cur_len - off < REMUS_DELTA_CHUNK ? cur_len - off : REMUS_DELTA_CHUNK;
        if (off + len <= base_len && memcmp(base + off, cur + off, len) == 0) {
            off += len;
            continue;
        }
        /* A run of changed chunks, as long as they last. */
        size_t end = off + len;
        while (end < cur_len) {
            size_t l = cur_len - end < REMUS_DELTA_CHUNK ? cur_len - end : REMUS_DELTA_CHUNK;
            if (end + l <= base_len && memcmp(base + end, cur + end, l) == 0)
                break;
            end += l;
        }
        remus_put_be64(d + n, off);
        remus_put_be64(d + n + 8, end - off);
        memcpy(d + n + RUN, cur + off, end - off);
        n += RUN + end - off;
        off = end;
    }
    *ret = d;
    *ret_len = n;
    return 0;
}

int remus_dev_delta_check(const unsigned char *d, size_t len, struct vmha_err *err)
{
    if (len < HEAD)
        return vmha_err_set(err, -EPROTO, "device state delta cut short (%zu bytes)", len);
    uint64_t new_len = remus_get_be64(d + 8);
    if (remus_get_be64(d) > REMUS_DEV_MAX || new_len > REMUS_DEV_MAX || new_len == 0)
        return vmha_err_set(err, -EPROTO, "device state delta of an impossible size");
    uint64_t at = 0; /* runs go forwards and do not overlap */
    for (size_t p = HEAD; p < len;) {
        if (len - p < RUN)
            return vmha_err_set(err, -EPROTO, "device state delta: a run cut short");
        uint64_t off = remus_get_be64(d + p), n = remus_get_be64(d + p + 8);
        /* (off and n are each below 2^64 and checked one at a time: no sum wraps) */
        if (n == 0 || off < at || off > new_len || n > new_len - off || n > len - p - RUN)
            return vmha_err_set(err, -EPROTO,
                                "device state delta: a run of %llu bytes at %llu does not fit",
                                (unsigned long long)n, (unsigned long long)off);
        at = off + n;
        p += RUN + (size_t)n;
    }
    return 0;
}

int remus_dev_delta_apply(const unsigned char *d, size_t len, const unsigned char *base,
                          size_t base_len, unsigned char **ret, size_t *ret_len,
                          struct vmha_err *err)
{
    int r = remus_dev_delta_check(d, len, err);
    if (r < 0)
        return r;
    if (remus_get_be64(d) != base_len)
        return vmha_err_set(err, -ESTALE,
                            "the device state delta follows one of %llu bytes, this replica's "
                            "is %zu: it needs a whole checkpoint",
                            (unsigned long long)remus_get_be64(d), base_len);
    size_t new_len = (size_t)remus_get_be64(d + 8);
    unsigned char *out = malloc(new_len);
    if (!out)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    size_t keep = base_len < new_len ? base_len : new_len;
    memcpy(out, base, keep);
    memset(out + keep, 0, new_len - keep); /* (the runs cover it: see make) */
    for (size_t p = HEAD; p < len;) {
        size_t off = (size_t)remus_get_be64(d + p), n = (size_t)remus_get_be64(d + p + 8);
        memcpy(out + off, d + p + RUN, n);
        p += RUN + n;
    }
    *ret = out;
    *ret_len = new_len;
    return 0;
}
