/* The backup's side: accept one epoch's stream at a time, keep it only if it is whole,
 * commit it by rename (the previous checkpoint stays until then), acknowledge. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/state.h"

/* The most a body may hold: a first checkpoint's base and its changes (each at most every
 * page of the guest's memory) and the device state. Nothing larger is written to the
 * backup's files, which live in host memory (/run). */
static uint64_t body_max(const struct remus_ctx *x)
{
    uint64_t pages = x->memory / REMUS_PAGE;
    uint64_t disk =
        x->disks.n ? 16 + REMUS_MIRROR_LOG_MAX + REMUS_DREC_LEN + REMUS_NBD_MAX_REQUEST : 0;
    uint64_t nvram = x->nvram ? 16 + REMUS_NVRAM_MAX : 0;
    return 2 * (32 + pages * (8 + REMUS_PAGE)) + disk + nvram + 16 + REMUS_DEV_MAX;
}

/* The parsed body is whole, its memory is the guest's, and it follows what this replica
 * holds: a full checkpoint of a new session or one later in this session, or the changes
 * since the epoch this replica holds. An older epoch is never taken again. */
static int check_body(const struct remus_ctx *x, const struct remus_body *b,
                      const struct remus_epoch_id *id, struct vmha_err *err)
{
    if (b->nvram && !x->nvram)
        return vmha_err_set(err, -EPROTO,
                            "checkpoint %" PRIu64 " carries a UEFI variable store, but guest %s "
                            "has none",
                            id->epoch, x->guest);
    if (b->ram_size != x->memory)
        return vmha_err_set(err, -EPROTO,
                            "checkpoint %" PRIu64 " carries %" PRIu64 " bytes of "
                            "memory, but guest %s has %" PRIu64,
                            id->epoch, b->ram_size, x->guest, x->memory);
    uint64_t session = 0, epoch = 0;
    bool held = remus_checkpoint(x->dir, &session, &epoch) == 0;
    bool same = held && session == id->session;
    if (same && id->epoch <= epoch)
        return vmha_err_set(err, -ESTALE,
                            "checkpoint %" PRIu64 " of session %016" PRIx64
                            " is not newer than the one this replica holds (%" PRIu64 "): "
                            "refused",
                            id->epoch, id->session, epoch);
    if (!b->full && (!same || epoch + 1 != id->epoch))
        return vmha_err_set(err, -ESTALE,
                            "checkpoint %" PRIu64 " holds the changes since %" PRIu64
                            ", but this replica holds %016" PRIx64 "/%" PRIu64 ": it "
                            "needs a whole one",
                            id->epoch, id->epoch - 1, session, epoch);
    return 0;
}

/* The header line, by dl. */
static int read_header(struct chan *ch, struct remus_epoch_id *id, const struct vmha_deadline *dl,
                       struct vmha_err *err)
{
    char line[REMUS_HEADER_MAX];
    ssize_t n = chan_read_line(ch, line, sizeof(line), dl);
    if (n == -EPIPE || n == -ETIMEDOUT || n == -ECANCELED)
        return vmha_err_set(err, (int)n, "no checkpoint header: %s",
                            n == -EPIPE ? "connection closed" : strerror((int)-n));
    return remus_header_parse(line, id, err); /* a line cut short is no header either */
}

/* Exactly n bytes, by dl. */
static int read_exact(struct chan *ch, void *buf, size_t n, const struct vmha_deadline *dl)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = chan_read(ch, p, n, dl);
        if (r <= 0)
            return r < 0 ? (int)r : -EPIPE;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The body and trailer into part, by dl, at most max bytes (the first plen of them already
 * read, in prefix): the bytes kept, or -errno. */
static int64_t read_body(struct chan *ch, int out, const char *part, uint64_t epoch, uint64_t max,
                         const unsigned char *prefix, size_t plen, const struct vmha_deadline *dl,
                         struct vmha_err *err)
{
    /* Everything but the last REMUS_TRAILER_LEN bytes is file: hold those back. */
    static unsigned char buf[1 << 20];
    memcpy(buf, prefix, plen);
    size_t held = plen;
    uint64_t bytes = 0;
    for (;;) {
        ssize_t n = chan_read(ch, buf + held, sizeof(buf) - held, dl);
        if (n < 0)
            return vmha_err_set(err, (int)n,
                                "checkpoint %" PRIu64 " broke off after %" PRIu64 " bytes: %s",
                                epoch, bytes, strerror((int)-n));
        if (n == 0)
            break;
        held += (size_t)n;
        if (held <= REMUS_TRAILER_LEN)
            continue;
        size_t flush = held - REMUS_TRAILER_LEN;
        if (bytes + flush > max)
            return vmha_err_set(err, -EFBIG,
                                "checkpoint %" PRIu64 " is larger than any of "
                                "this guest's can be (%" PRIu64 " bytes): dropped",
                                epoch, max);
        int r = vmha_write_all(out, buf, flush);
        if (r < 0)
            return vmha_err_set(err, r, "cannot write %s: %s", part, strerror(-r));
        memmove(buf, buf + flush, REMUS_TRAILER_LEN);
        held = REMUS_TRAILER_LEN;
        bytes += flush;
    }
    if (held != REMUS_TRAILER_LEN || !remus_trailer_ok(buf, epoch))
        return vmha_err_set(err, -EPIPE,
                            "checkpoint %" PRIu64 " is incomplete (%" PRIu64 " bytes): dropped",
                            epoch, bytes);
    return (int64_t)bytes;
}

/* The backup's disks are about to hold a replica's base: whatever they held, nothing may
 * boot from them but a checkpoint (the agent removes the mark once it has resumed one). */
static int mark_disks_replica(struct remus_ctx *x, uint64_t session, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char v[32];
    snprintf(v, sizeof(v), "%016" PRIx64, session);
    if (store_kv_set(&kv, "session", v) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    /* The directory and its parent, 0700, as the package leaves VMHA_LOCALDIR. */
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", x->local_dir);
    char *sl = strrchr(parent, '/');
    if (sl && sl != parent) {
        *sl = '\0';
        mkdir(parent, 0700);
    }
    if (mkdir(x->local_dir, 0700) < 0 && errno != EEXIST)
        return vmha_err_set(err, -errno, "cannot create %s: %s", x->local_dir, strerror(errno));
    return store_write(x->local_dir, STATE_DISKS_REPLICA, &kv, false, err);
}

/* A disk base (REMUS_BODY_DISKBASE, its magic already read): the disks' sizes must be this
 * node's, then every record is written to the disks as it comes, up to the end record. The
 * checkpoint held so far no longer matches the disks: it is dropped first. */
static int receive_disk_base(struct remus_ctx *x, struct chan *ch, const struct remus_epoch_id *id,
                             const struct vmha_deadline *dl, struct vmha_err *err)
{
    const struct remus_disks *ds = &x->disks;
    unsigned char h[8 * (1 + REMUS_DISKS_MAX)];
    int r = read_exact(ch, h, 8, dl);
    if (r < 0)
        return vmha_err_set(err, r, "the disks' copy broke off: %s", strerror(-r));
    if (remus_get_be64(h) != ds->n || ds->n == 0)
        return vmha_err_set(err, -EPROTO,
                            "the primary copies %" PRIu64 " disks of %s, this node has %zu",
                            remus_get_be64(h), x->guest, ds->n);
    if ((r = read_exact(ch, h + 8, 8 * ds->n, dl)) < 0)
        return vmha_err_set(err, r, "the disks' copy broke off: %s", strerror(-r));
    for (size_t i = 0; i < ds->n; i++)
        if (remus_get_be64(h + 8 + 8 * i) != ds->d[i].size)
            return vmha_err_set(err, -EPROTO,
                                "disk %s of %s is %" PRIu64 " bytes on the primary and %" PRIu64
                                " here (%s): make them the same size",
                                ds->d[i].target, x->guest, remus_get_be64(h + 8 + 8 * i),
                                ds->d[i].size, ds->d[i].path);
    if ((r = remus_checkpoint_drop(x->dir, err)) < 0 ||
        (r = mark_disks_replica(x, id->session, err)) < 0)
        return r;
    x->st.epoch = 0;
    _cleanup_free_ unsigned char *rec = malloc(REMUS_DREC_LEN + REMUS_NBD_MAX_REQUEST);
    if (!rec)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    uint64_t bytes = 0;
    for (;;) {
        if ((r = read_exact(ch, rec, REMUS_DREC_LEN, dl)) < 0)
            return vmha_err_set(err, r, "the disks' copy broke off after %" PRIu64 " bytes: %s",
                                bytes, strerror(-r));
        size_t used = 0;
        if (remus_drecs_check(rec, REMUS_DREC_LEN, ds, true, &used, NULL) == 0)
            break; /* the end record */
        uint64_t len = remus_get_be64(rec + 16);
        bool zero = rec[7] & REMUS_DREC_ZERO;
        /* A base's records are QEMU's writes: none longer than an NBD request. */
        if (!zero && len > REMUS_NBD_MAX_REQUEST)
            return vmha_err_set(err, -EPROTO, "a disk record of %" PRIu64 " bytes", len);
        if (!zero && (r = read_exact(ch, rec + REMUS_DREC_LEN, (size_t)len, dl)) < 0)
            return vmha_err_set(err, r, "the disks' copy broke off after %" PRIu64 " bytes: %s",
                                bytes, strerror(-r));
        size_t n = REMUS_DREC_LEN + (zero ? 0 : (size_t)len);
        if ((r = remus_drecs_check(rec, n, ds, false, &used, err)) < 0 ||
            (r = remus_drecs_apply(rec, n, ds, err)) < 0)
            return r;
        bytes += len;
    }
    cluster_log(LOG_NOTICE, "replica of %s: its disks are copied (%" PRIu64 " bytes)", x->guest,
                bytes);
    return 0;
}

/* A body whose device state is a delta (remus/delta.c), b parsed from m (the file fd):
 * rebuilt whole against the device state of the checkpoint this replica holds (its journal
 * applied already), in the delta's place, so that a journal always holds the whole state. */
static int expand_dev(const struct remus_ctx *x, int fd, const char *part, const void *m,
                      const struct remus_body *b, struct vmha_err *err)
{
    off_t at = (off_t)(b->dev - 16 - (const unsigned char *)m);
    char dpath[4096];
    snprintf(dpath, sizeof(dpath), "%s/dev.save", x->dir);
    _cleanup_free_ uint8_t *base = NULL;
    _cleanup_free_ unsigned char *whole = NULL;
    size_t base_len = 0, len = 0;
    int r = vmha_read_blob(dpath, REMUS_DEV_MAX, &base, &base_len, err);
    if (r == 0)
        r = remus_dev_delta_apply(b->dev, (size_t)b->dev_len, base, base_len, &whole, &len, err);
    if (r < 0)
        return r;
    unsigned char head[16];
    memcpy(head, REMUS_BODY_DEV, 8);
    remus_put_be64(head + 8, len);
    if (ftruncate(fd, at) < 0 || lseek(fd, at, SEEK_SET) != at ||
        (r = vmha_write_all(fd, head, sizeof(head))) < 0 ||
        (r = vmha_write_all(fd, whole, len)) < 0)
        return vmha_err_set(err, r < 0 ? r : -errno, "cannot write %s: %s", part,
                            strerror(r < 0 ? -r : errno));
    return 0;
}

/* The body in part, read back once: parsed, checked (check_body), and a device state delta
 * rebuilt whole (expand_dev). */
static int take_body(struct remus_ctx *x, const char *part, const struct remus_epoch_id *id,
                     struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(part, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
        return vmha_err_set(err, -EIO, "cannot read %s back", part);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return vmha_err_set(err, -errno, "cannot read %s back: %s", part, strerror(errno));
    struct remus_body b;
    int r = remus_body_parse(m, (size_t)st.st_size, &x->disks, &b, err);
    if (r == 0)
        r = check_body(x, &b, id, err);
    if (r == 0 && b.dev_delta)
        r = expand_dev(x, fd, part, m, &b, err);
    munmap(m, (size_t)st.st_size);
    return r;
}

/* Commits the checkpoint in part: the previous epoch is applied before this one replaces
 * its journal, then the journal's identity is recorded. */
static int commit(struct remus_ctx *x, const char *part, const struct remus_epoch_id *id,
                  struct vmha_err *err)
{
    char final[4096];
    if (snprintf(final, sizeof(final), "%s/ckpt.jrnl", x->dir) >= (int)sizeof(final))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", x->dir);
    /* (applied first: a delta is rebuilt against the device state it leaves) */
    int r = remus_journal_apply(x->dir, err);
    if (r < 0 || (r = take_body(x, part, id, err)) < 0)
        return r;
    if (rename(part, final) < 0)
        return vmha_err_set(err, -errno, "cannot commit %s: %s", final, strerror(errno));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char session[32], epoch[32];
    snprintf(session, sizeof(session), "%016" PRIx64, id->session);
    snprintf(epoch, sizeof(epoch), "%" PRIu64, id->epoch);
    if (store_kv_set(&kv, "session", session) < 0 || store_kv_set(&kv, "epoch", epoch) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    return store_write(x->dir, "ckpt.meta", &kv, false, err);
}

/* One authenticated connection: header, body, trailer; commit; answer. The header comes by
 * hdl; the rest has one deadline for the whole epoch (a peer that trickles bytes gains
 * nothing): the checkpoint's timeout twice, and time for all of the memory to cross. */
int remus_receive_epoch(struct remus_ctx *x, struct chan *ch, const struct vmha_deadline *hdl,
                        struct vmha_err *err)
{
    struct remus_epoch_id id;
    int r = read_header(ch, &id, hdl, err);
    if (r < 0)
        return r;
    if (strcmp(id.guest, x->guest) != 0)
        return vmha_err_set(err, -EPROTO, "a checkpoint of guest %s arrived at %s's replica",
                            id.guest, x->guest);
    uint64_t disks = 0;
    for (size_t i = 0; i < x->disks.n; i++)
        disks += x->disks.d[i].size;
    struct vmha_deadline dl = vmha_deadline_in(2 * x->timeout_ms + (x->memory + disks) / 52429);
    /* The last epoch is applied (see the end): the primary may pause its guest. */
    if ((r = chan_write_all(ch, "GO\n", 3, &dl)) < 0)
        return vmha_err_set(err, r, "the primary is gone: %s", strerror(-r));
    unsigned char first[8];
    if ((r = read_exact(ch, first, sizeof(first), &dl)) < 0)
        return vmha_err_set(err, r, "checkpoint %" PRIu64 " broke off: %s", id.epoch, strerror(-r));
    size_t plen = sizeof(first);
    if (memcmp(first, REMUS_BODY_DISKBASE, 8) == 0) {
        if ((r = receive_disk_base(x, ch, &id, &dl, err)) < 0)
            return r;
        plen = 0;
    }
    char part[4096];
    if (snprintf(part, sizeof(part), "%s/ckpt.part", x->dir) >= (int)sizeof(part))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", x->dir);
    unlink(part);
    _cleanup_(closep) int out =
        open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return vmha_err_set(err, -errno, "cannot create %s: %s", part, strerror(errno));
    int64_t bytes = read_body(ch, out, part, id.epoch, body_max(x), first, plen, &dl, err);
    /* The checkpoint only has to outlive the primary, not this host: no fsync. */
    if (bytes >= 0 && close(TAKE_FD(out)) < 0)
        bytes = vmha_err_set(err, -errno, "cannot write %s: %s", part, strerror(errno));
    if (bytes < 0 || (r = commit(x, part, &id, err)) < 0) {
        unlink(part);
        return bytes < 0 ? (int)bytes : r;
    }
    char ack[64];
    int n = snprintf(ack, sizeof(ack), "ACK %" PRIu64 "\n", id.epoch);
    if ((r = chan_write_all(ch, ack, (size_t)n, &dl)) < 0)
        cluster_log(LOG_WARNING, "checkpoint %" PRIu64 " committed, but the primary is gone: %s",
                    id.epoch, strerror(-r));
    x->st.session = id.session;
    x->st.epoch = id.epoch;
    x->st.bytes = (uint64_t)bytes;
    x->st.committed_ms = remus_realtime_ms();
    x->st.epochs++;
    /* Committed whatever happens next: a journal not applied here is applied before a
     * restore reads the checkpoint. */
    struct vmha_err e = {0};
    if (remus_journal_apply(x->dir, &e) < 0)
        cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
    return 0;
}

void remus_advertise(struct remus_ctx *x, bool on)
{
    char attr[300];
    snprintf(attr, sizeof(attr), REMUS_ATTR_REPLICA "%s", x->guest);
    struct vmha_deadline dl = vmha_deadline_in(on ? 10000 : 5000);
    struct vmha_err err = {0};
    if (cluster_attr_update(x->node, attr, on ? x->listen : NULL, &dl, &err) < 0)
        cluster_log(LOG_WARNING, "cannot %s the replica of %s: %s", on ? "advertise" : "withdraw",
                    x->guest, err.msg);
    else if (on)
        cluster_log(LOG_NOTICE, "replica of %s listens on %s", x->guest, x->listen);
}

/* A peer proven to be the cluster's primary: its epoch, answered. */
static void serve(struct remus_ctx *x, struct chan *ch)
{
    struct vmha_err e = {0};
    struct vmha_deadline hdl =
        vmha_deadline_in(x->timeout_ms < REMUS_HEADER_MS ? x->timeout_ms : REMUS_HEADER_MS);
    if (remus_receive_epoch(x, ch, &hdl, &e) < 0) {
        x->st.failures++;
        snprintf(x->st.error, sizeof(x->st.error), "%s", e.msg);
        cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
        char nak[300];
        int n = snprintf(nak, sizeof(nak), "NAK %s\n", e.msg);
        struct vmha_deadline nd = vmha_deadline_in(1000);
        chan_write_all(ch, nak, (size_t)(n < (int)sizeof(nak) ? n : (int)sizeof(nak) - 1), &nd);
    } else {
        x->st.error[0] = '\0';
        if (x->st.epochs == 1 || x->st.epochs % 100 == 0)
            cluster_log(LOG_INFO, "replica of %s holds checkpoint %llu (%llu epochs)", x->guest,
                        (unsigned long long)x->st.epoch, (unsigned long long)x->st.epochs);
    }
    chan_close(ch);
    snprintf(x->st.state, sizeof(x->st.state), "%s", x->st.epoch ? "holding" : "listening");
    remus_publish(x);
}

int remus_receive(struct remus_ctx *x)
{
    struct vmha_err err = {0};
    struct remus_door door;
    if (remus_door_open(x, &door, &err) < 0)
        return remus_fail(x, &err);
    snprintf(x->st.role, sizeof(x->st.role), "backup");
    snprintf(x->st.state, sizeof(x->st.state), "listening");
    /* The journal is applied to the disks this table names (by the agent too, at a
     * promotion): this node's own, never the stream's. */
    if (remus_disks_shared(&x->disks, x->guest, x->node, &err) < 0 ||
        remus_disks_mark(&x->disks, x->guest, x->node, &err) < 0 ||
        remus_disks_save(x->dir, &x->disks, &err) < 0) {
        remus_door_close(&door);
        return remus_fail(x, &err);
    }
    remus_publish(x);
    remus_advertise(x, true);
    while (!remus_stop_requested) {
        struct chan ch;
        if (remus_door_wait(x, &door, 200, &ch) == 1)
            serve(x, &ch);
    }
    remus_door_close(&door);
    remus_advertise(x, false);
    cluster_log(LOG_NOTICE, "replica of %s stops (last checkpoint %llu kept)", x->guest,
                (unsigned long long)x->st.epoch);
    return 0;
}
