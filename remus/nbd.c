/* The target of QEMU's mirror of a replicated guest's disk: the smallest NBD server that a
 * block copy with synchronous writes needs (fixed newstyle handshake, one export, simple
 * replies). It holds no data: every write QEMU makes is handed to the caller, which keeps it
 * for the backup, and the write completes for the guest only once the caller has it.
 * What arrives here is hostile until proven: every length is bounded before use, and a peer
 * that breaks the protocol is cut off. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/remus.h"

#define NBD_MAGIC_INIT 0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_MAGIC_OPT 0x49484156454f5054ull  /* "IHAVEOPT" */
#define NBD_MAGIC_REPLY_OPT 0x0003e889045565a9ull
#define NBD_MAGIC_REQUEST 0x25609513u
#define NBD_MAGIC_REPLY 0x67446698u

#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES 2u

#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u

#define NBD_REP_ACK 1u
#define NBD_REP_INFO 3u
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_UNKNOWN 0x80000006u

#define NBD_INFO_EXPORT 0u
#define NBD_INFO_BLOCK_SIZE 3u

#define NBD_TFLAG_HAS_FLAGS 1u
#define NBD_TFLAG_SEND_FLUSH 4u
#define NBD_TFLAG_SEND_FUA 8u
#define NBD_TFLAG_SEND_WRITE_ZEROES 64u

#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_WRITE_ZEROES 6u

#define NBD_EIO 5u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_ENOTSUP 95u

/* The longest option a client may send: an export name and a few info requests. */
#define NBD_OPT_MAX 4096u

static int get(const struct remus_nbd_io *io, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = io->read(io->opaque, p, n);
        if (r == 0)
            return -EPIPE;
        if (r < 0)
            return (int)r;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int put(const struct remus_nbd_io *io, const void *buf, size_t n)
{
    return io->write(io->opaque, buf, n);
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static int opt_reply(const struct remus_nbd_io *io, uint32_t opt, uint32_t type,
                     const unsigned char *data, uint32_t len)
{
    unsigned char h[20];
    remus_put_be64(h, NBD_MAGIC_REPLY_OPT);
    remus_put_be32(h + 8, opt);
    remus_put_be32(h + 12, type);
    remus_put_be32(h + 16, len);
    int r = put(io, h, sizeof(h));
    return r < 0 || len == 0 ? r : put(io, data, len);
}

static const uint16_t TFLAGS =
    NBD_TFLAG_HAS_FLAGS | NBD_TFLAG_SEND_FLUSH | NBD_TFLAG_SEND_FUA | NBD_TFLAG_SEND_WRITE_ZEROES;

/* NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 n, n info requests. 1 when the
 * client may go on to transmission, 0 to haggle on, -errno to hang up. */
static int opt_go(const struct remus_nbd_io *io, const struct remus_nbd_export *e, uint32_t opt,
                  const unsigned char *d, uint32_t len)
{
    if (len < 6)
        return opt_reply(io, opt, NBD_REP_ERR_INVALID, NULL, 0);
    uint32_t nlen = remus_get_be32(d);
    if (nlen > len - 6)
        return opt_reply(io, opt, NBD_REP_ERR_INVALID, NULL, 0);
    uint16_t nreq = be16(d + 4 + nlen);
    if (len != 4 + nlen + 2 + 2 * (uint32_t)nreq)
        return opt_reply(io, opt, NBD_REP_ERR_INVALID, NULL, 0);
    if (nlen != strlen(e->name) || memcmp(d + 4, e->name, nlen) != 0)
        return opt_reply(io, opt, NBD_REP_ERR_UNKNOWN, NULL, 0);
    unsigned char info[14];
    put_be16(info, NBD_INFO_EXPORT);
    remus_put_be64(info + 2, e->size);
    put_be16(info + 10, TFLAGS);
    int r = opt_reply(io, opt, NBD_REP_INFO, info, 12);
    /* Whether asked or not: no request longer than what the backup's bound allows. */
    put_be16(info, NBD_INFO_BLOCK_SIZE);
    remus_put_be32(info + 2, 1);
    remus_put_be32(info + 6, 4096);
    remus_put_be32(info + 10, REMUS_NBD_MAX_REQUEST);
    if (r == 0)
        r = opt_reply(io, opt, NBD_REP_INFO, info, 14);
    if (r == 0)
        r = opt_reply(io, opt, NBD_REP_ACK, NULL, 0);
    return r < 0 ? r : opt == NBD_OPT_GO;
}

/* The handshake up to transmission: 0 when the client chose the export, -errno otherwise. */
static int handshake(const struct remus_nbd_io *io, const struct remus_nbd_export *e)
{
    unsigned char h[18];
    remus_put_be64(h, NBD_MAGIC_INIT);
    remus_put_be64(h + 8, NBD_MAGIC_OPT);
    put_be16(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    unsigned char cf[4];
    int r = put(io, h, sizeof(h));
    if (r < 0 || (r = get(io, cf, 4)) < 0)
        return r;
    uint32_t cflags = remus_get_be32(cf);
    if (!(cflags & NBD_FLAG_FIXED_NEWSTYLE) ||
        (cflags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)))
        return -EPROTO;
    unsigned char data[NBD_OPT_MAX];
    for (;;) {
        unsigned char oh[16];
        if ((r = get(io, oh, sizeof(oh))) < 0)
            return r;
        uint32_t opt = remus_get_be32(oh + 8), len = remus_get_be32(oh + 12);
        if (remus_get_be64(oh) != NBD_MAGIC_OPT || len > NBD_OPT_MAX)
            return -EPROTO;
        if ((r = get(io, data, len)) < 0)
            return r;
        switch (opt) {
        case NBD_OPT_EXPORT_NAME: {
            if (len != strlen(e->name) || memcmp(data, e->name, len) != 0)
                return -ENOENT; /* this option has no error reply */
            unsigned char rep[10 + 124] = {0};
            remus_put_be64(rep, e->size);
            put_be16(rep + 8, TFLAGS);
            return put(io, rep, (cflags & NBD_FLAG_NO_ZEROES) ? 10 : sizeof(rep));
        }
        case NBD_OPT_ABORT:
            opt_reply(io, opt, NBD_REP_ACK, NULL, 0);
            return -ECONNABORTED;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            if ((r = opt_go(io, e, opt, data, len)) != 0)
                return r < 0 ? r : 0;
            break;
        default:
            if ((r = opt_reply(io, opt, NBD_REP_ERR_UNSUP, NULL, 0)) < 0)
                return r;
        }
    }
}

static int reply(const struct remus_nbd_io *io, const unsigned char *cookie, uint32_t error)
{
    unsigned char rep[16];
    remus_put_be32(rep, NBD_MAGIC_REPLY);
    remus_put_be32(rep + 4, error);
    memcpy(rep + 8, cookie, 8);
    return put(io, rep, sizeof(rep));
}

static uint32_t nbd_errno(int r)
{
    return r == -ENOSPC ? NBD_ENOSPC : r == -EINVAL ? NBD_EINVAL : NBD_EIO;
}

/* Transmission: requests until the client disconnects (0) or breaks the protocol. */
static int transmission(const struct remus_nbd_io *io, const struct remus_nbd_export *e,
                        unsigned char *buf)
{
    for (;;) {
        unsigned char q[28];
        int r = get(io, q, sizeof(q));
        if (r < 0)
            return r;
        uint16_t type = be16(q + 6);
        const unsigned char *cookie = q + 8;
        uint64_t off = remus_get_be64(q + 16);
        uint32_t len = remus_get_be32(q + 24);
        if (remus_get_be32(q) != NBD_MAGIC_REQUEST)
            return -EPROTO;
        /* A write's payload follows whatever we answer: one too long cannot be skipped. */
        if (type == NBD_CMD_WRITE && len > REMUS_NBD_MAX_REQUEST)
            return -EPROTO;
        bool in_range = off <= e->size && len <= e->size - off;
        switch (type) {
        case NBD_CMD_WRITE:
            if ((r = get(io, buf, len)) < 0)
                return r;
            r = in_range ? e->write(e->opaque, off, buf, len) : -EINVAL;
            r = reply(io, cookie, r < 0 ? nbd_errno(r) : 0);
            break;
        case NBD_CMD_WRITE_ZEROES:
            r = in_range ? e->write(e->opaque, off, NULL, len) : -EINVAL;
            r = reply(io, cookie, r < 0 ? nbd_errno(r) : 0);
            break;
        case NBD_CMD_FLUSH:
            /* Every write is the caller's once answered; what reaches the backup's disk is
             * decided by the checkpoints. */
            r = reply(io, cookie, 0);
            break;
        case NBD_CMD_DISC:
            return 0;
        case NBD_CMD_READ:
            /* The mirror never reads its target, and this one holds no data to read. */
        default:
            r = reply(io, cookie, type == NBD_CMD_READ ? NBD_EINVAL : NBD_ENOTSUP);
        }
        if (r < 0)
            return r;
    }
}

int remus_nbd_serve(const struct remus_nbd_io *io, const struct remus_nbd_export *e)
{
    int r = handshake(io, e);
    if (r < 0)
        return r;
    unsigned char *buf = malloc(REMUS_NBD_MAX_REQUEST);
    if (!buf)
        return -ENOMEM;
    r = transmission(io, e, buf);
    free(buf);
    return r;
}
