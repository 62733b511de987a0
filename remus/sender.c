/* The primary's side: the epoch loop. Each epoch: checkpoint to the backup (the guest ends
 * paused), wait for the backup's ACK, let out the output held since the previous epoch,
 * resume. Without a backup the guest runs unprotected, but only after every replica that
 * could be promoted has been marked stale in the cluster. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/hv.h"

struct sender {
    struct remus_ctx *x;
    struct hv *hv;
    bool held;                /* output is being held */
    char peer[256];           /* node name of the backup */
    char addr[300];           /* its replication address:port */
    int qemu;                 /* pidfd of the process whose memory ram is */
    const unsigned char *ram; /* the guest's memory (mapped read-only), ram_size bytes */
    size_t ram_size;
    unsigned char *shadow; /* what the backup holds of it, once synced */
    uint64_t *dirty;       /* the page numbers an epoch sends */
    bool synced;           /* the backup holds the shadow: send only what differs */
    bool qemu_gone;        /* the guest's memory is no longer ram: start again */
    int qemu_pid;
    struct remus_mirror mirror; /* the guest's writable disks, when it has any */
    bool mirror_open;
    char *nvram_path;     /* the guest's UEFI variable store, when it has one */
    unsigned char *nvram; /* what the backup holds of it (nvram_len bytes), once synced */
    size_t nvram_len;
    unsigned char *nvram_next; /* read at this epoch's pause; the backup's once committed */
    size_t nvram_next_len;
    unsigned char *dev; /* the device state the backup holds (dev_len bytes), once synced */
    size_t dev_len;
    unsigned char *dev_next; /* this epoch's; the backup's once committed */
    size_t dev_next_len;
};

/* The backup's answer to checkpoint epoch ("ACK <epoch>"), or before it ("GO"), by dl. */
static int read_answer(struct chan *ch, uint64_t epoch, const char *want,
                       const struct vmha_deadline *dl, struct vmha_err *err)
{
    char line[400];
    if (chan_read_line(ch, line, sizeof(line), dl) == -ETIMEDOUT)
        return vmha_err_set(err, -ETIMEDOUT,
                            "no %s from the replica for checkpoint %" PRIu64 " in time",
                            want[0] == 'G' ? "go-ahead" : "acknowledgement", epoch);
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, want) == 0)
        return 0;
    return vmha_err_set(err, -EPROTO, "the replica refused checkpoint %" PRIu64 ": %s", epoch,
                        line[0] ? line : "connection closed");
}

/* QEMU writes the device state into one end of a socket pair; this thread collects it,
 * until QEMU closes its end. */
struct collect {
    int in;
    struct vmha_deadline dl;
    unsigned char *buf;
    size_t len, cap;
    int err;
};

static void *collect_run(void *arg)
{
    struct collect *c = arg;
    struct chan in = {.fd = c->in};
    for (;;) {
        if (c->cap - c->len < (64 << 10)) {
            size_t cap = c->cap ? c->cap * 2 : (1 << 20);
            unsigned char *b = cap <= REMUS_DEV_MAX ? realloc(c->buf, cap) : NULL;
            if (!b) {
                c->err = -ENOMEM;
                return NULL;
            }
            c->buf = b;
            c->cap = cap;
        }
        ssize_t n = chan_read(&in, c->buf + c->len, c->cap - c->len, &c->dl);
        if (n <= 0) {
            c->err = (int)n;
            return NULL;
        }
        c->len += (size_t)n;
    }
}

/* The guest's device state, taken by the hypervisor (the guest ends paused), into *dev. */
static int take(struct sender *s, const struct vmha_deadline *dl, struct collect *dev,
                struct hv_ckpt_stats *st, struct vmha_err *err)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return vmha_err_set(err, -errno, "socketpair: %s", strerror(errno));
    dev->in = sp[0];
    dev->dl = *dl;
    pthread_t t;
    if (pthread_create(&t, NULL, collect_run, dev) != 0) {
        close(sp[0]);
        close(sp[1]);
        return vmha_err_set(err, -EAGAIN, "cannot start the checkpoint's collector");
    }
    int r = hv_ckpt_take(s->hv, s->x->guest, sp[1], dl, st, err);
    close(sp[1]); /* QEMU closes its copy when its migration is cleaned up: EOF */
    pthread_join(t, NULL);
    close(sp[0]);
    if (r == 0 && dev->err < 0)
        r = vmha_err_set(err, dev->err, "the guest's device state was lost on its way: %s",
                         strerror(-dev->err));
    return r;
}

/* The guest's memory, mapped, and a copy of what the backup holds of it (the shadow). */
static int track_open(struct sender *s, struct vmha_err *err)
{
    int fd = -1, pid = 0;
    int r = hv_ckpt_memory(s->hv, s->x->guest, &fd, &pid, err);
    if (r < 0)
        return r;
    /* The mapping keeps the memory alive after its QEMU is gone; a guest started again has
     * other memory. pidfd_open: a pid reused by another process cannot fool the check. */
    s->qemu_pid = pid;
    s->qemu = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->qemu < 0) {
        r = -errno;
        close(fd);
        return vmha_err_set(err, r, "cannot watch the guest's QEMU (pid %d): %s", pid,
                            strerror(-r));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % REMUS_PAGE) {
        close(fd);
        return vmha_err_set(err, -EINVAL, "the guest's memory has an odd size");
    }
    s->ram_size = (size_t)st.st_size;
    void *m = mmap(NULL, s->ram_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    s->shadow = malloc(s->ram_size);
    s->dirty = malloc(s->ram_size / REMUS_PAGE * sizeof(uint64_t));
    if (m == MAP_FAILED || !s->shadow || !s->dirty) {
        if (m != MAP_FAILED)
            munmap(m, s->ram_size);
        free(s->shadow);
        free(s->dirty);
        s->shadow = NULL;
        s->dirty = NULL;
        close(s->qemu);
        s->qemu = -1;
        return vmha_err_set(err, -ENOMEM,
                            "cannot map the guest's memory (%zu bytes) and its "
                            "copy",
                            s->ram_size);
    }
    s->ram = m;
    s->synced = false;
    return 0;
}

/* One half of a scan: the pages in [from, to) that differ from the shadow (all non-zero
 * ones when it is not in step), copied into it, their numbers at dirty[from page on]. */
struct scan {
    struct sender *s;
    bool base; /* compare with zero: the shadow is not in step */
    size_t from, to, n;
};

static void *scan_run(void *arg)
{
    static const unsigned char zero[REMUS_PAGE];
    struct scan *c = arg;
    struct sender *s = c->s;
    uint64_t *out = s->dirty + c->from / REMUS_PAGE;
    for (size_t off = c->from; off < c->to; off += REMUS_PAGE) {
        const unsigned char *page = s->ram + off;
        if (!c->base ? memcmp(page, s->shadow + off, REMUS_PAGE) == 0
                     : memcmp(page, zero, REMUS_PAGE) == 0) {
            if (c->base)
                memset(s->shadow + off, 0, REMUS_PAGE);
            continue;
        }
        memcpy(s->shadow + off, page, REMUS_PAGE);
        out[c->n++] = off / REMUS_PAGE;
    }
    return NULL;
}

/* The pages to send, into s->dirty: those that differ from the shadow, or with base every
 * non-zero one. Two threads: comparing the memory with its copy is what the guest's pause is
 * mostly made of. */
static size_t track_scan(struct sender *s, bool base)
{
    size_t half = s->ram_size / REMUS_PAGE / 2 * REMUS_PAGE;
    struct scan a = {.s = s, .base = base, .from = 0, .to = half},
                b = {.s = s, .base = base, .from = half, .to = s->ram_size};
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, scan_run, &b) == 0;
    scan_run(&a);
    if (threaded)
        pthread_join(t, NULL);
    else
        scan_run(&b);
    memmove(s->dirty + a.n, s->dirty + half / REMUS_PAGE, b.n * sizeof(uint64_t));
    return a.n + b.n;
}

/* A memory section of the epoch's body (include/vmha/remus.h) into ch: the n pages listed
 * in s->dirty, from the shadow. */
static int send_ram(struct sender *s, struct chan *ch, size_t n, bool full,
                    const struct vmha_deadline *dl)
{
    unsigned char head[32];
    memcpy(head, REMUS_BODY_RAM, 8);
    remus_put_be64(head + 8, full ? REMUS_BODY_FULL : 0);
    remus_put_be64(head + 16, s->ram_size);
    remus_put_be64(head + 24, n);
    int r = chan_write_all(ch, head, sizeof(head), dl);
    /* Records gathered 64 at a time: one write per 256 KiB. */
    static unsigned char buf[64 * (8 + REMUS_PAGE)];
    size_t used = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        remus_put_be64(buf + used, s->dirty[i]);
        memcpy(buf + used + 8, s->shadow + s->dirty[i] * REMUS_PAGE, REMUS_PAGE);
        used += 8 + REMUS_PAGE;
        if (used == sizeof(buf) || i + 1 == n) {
            r = chan_write_all(ch, buf, used, dl);
            used = 0;
        }
    }
    return r;
}

/* The body's last section: the device state, whole in a first checkpoint, else as the
 * chunks that changed since the one the backup holds (remus/delta.c). The state is kept
 * (dev->buf taken) until the backup commits it; *sent: the section's bytes. */
static int send_dev(struct sender *s, struct chan *ch, struct collect *dev, bool full, size_t *sent,
                    const struct vmha_deadline *dl)
{
    free(s->dev_next);
    s->dev_next = dev->buf;
    s->dev_next_len = dev->len;
    dev->buf = NULL;
    _cleanup_free_ unsigned char *delta = NULL;
    size_t len = s->dev_next_len;
    const unsigned char *body = s->dev_next;
    if (!full && s->dev) {
        int r =
            remus_dev_delta_make(s->dev, s->dev_len, s->dev_next, s->dev_next_len, &delta, &len);
        if (r < 0)
            return r;
        body = delta;
    }
    unsigned char head[16];
    memcpy(head, delta ? REMUS_BODY_DEVDELTA : REMUS_BODY_DEV, 8);
    remus_put_be64(head + 8, len);
    *sent = 16 + len;
    int r = chan_write_all(ch, head, sizeof(head), dl);
    return r < 0 ? r : chan_write_all(ch, body, len, dl);
}

/* The epoch's disk writes (mirror.c's log) as the body's disk section. */
static int send_disks(struct sender *s, struct chan *ch, size_t *bytes,
                      const struct vmha_deadline *dl)
{
    if (!s->mirror_open)
        return 0;
    unsigned char *log = NULL;
    size_t n = remus_mirror_take(&s->mirror, &log);
    unsigned char head[16];
    memcpy(head, REMUS_BODY_DISK, 8);
    remus_put_be64(head + 8, n);
    int r = chan_write_all(ch, head, sizeof(head), dl);
    if (r == 0 && n)
        r = chan_write_all(ch, log, n, dl);
    free(log);
    *bytes = n;
    return r;
}

/* The guest's UEFI variable store as it is at the pause (QEMU has flushed the flash), as the
 * body's NVRAM section when it changed since the checkpoint the backup holds (always in a
 * first one). */
static int send_nvram(struct sender *s, struct chan *ch, bool full, const struct vmha_deadline *dl,
                      struct vmha_err *err)
{
    free(s->nvram_next);
    s->nvram_next = NULL;
    if (!s->nvram_path)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = vmha_read_blob(s->nvram_path, REMUS_NVRAM_MAX, &buf, &len, err);
    if (r < 0)
        return r;
    if (len == 0) {
        free(buf);
        return vmha_err_set(err, -EINVAL, "the guest's NVRAM %s is empty", s->nvram_path);
    }
    s->nvram_next = buf;
    s->nvram_next_len = len;
    if (!full && s->nvram && len == s->nvram_len && memcmp(buf, s->nvram, len) == 0)
        return 0;
    unsigned char head[16];
    memcpy(head, REMUS_BODY_NVRAM, 8);
    remus_put_be64(head + 8, len);
    if ((r = chan_write_all(ch, head, sizeof(head), dl)) < 0 ||
        (r = chan_write_all(ch, buf, len, dl)) < 0)
        return vmha_err_set(err, r, "cannot send to the replica at %s: %s", s->addr, strerror(-r));
    return 0;
}

/* A first checkpoint of a guest with disks starts with the disks' base: QEMU's mirrors
 * start afresh, and what they write (the whole disks, and the guest's own writes meanwhile)
 * goes to the backup as it comes, until every disk has been copied. The guest runs. */
static int send_disk_base(struct sender *s, struct chan *ch, struct vmha_err *err)
{
    struct remus_ctx *x = s->x;
    if (!s->mirror_open)
        return 0;
    uint64_t total = 0;
    unsigned char head[16 + 8 * REMUS_DISKS_MAX];
    memcpy(head, REMUS_BODY_DISKBASE, 8);
    remus_put_be64(head + 8, x->disks.n);
    for (size_t i = 0; i < x->disks.n; i++) {
        remus_put_be64(head + 16 + 8 * i, x->disks.d[i].size);
        total += x->disks.d[i].size;
    }
    /* 20 ms per MiB of disk (50 MB/s at least), beside checkpoint_timeout. */
    struct vmha_deadline dl = vmha_deadline_in(x->timeout_ms + total / 52429);
    int r = remus_disks_shared(&x->disks, x->guest, x->node, err);
    if (r == 0)
        r = remus_mirror_start(&s->mirror, s->hv, err);
    if (r < 0)
        return r;
    if ((r = chan_write_all(ch, head, 16 + 8 * x->disks.n, &dl)) < 0)
        return vmha_err_set(err, r, "cannot send to the replica at %s: %s", s->addr, strerror(-r));
    uint64_t sent = 0;
    for (;;) {
        int ready = remus_mirror_ready(&s->mirror, s->hv, err);
        if (ready < 0)
            return ready;
        unsigned char *log = NULL;
        size_t n = remus_mirror_take(&s->mirror, &log);
        r = n ? chan_write_all(ch, log, n, &dl) : 0;
        free(log);
        if (r < 0)
            return vmha_err_set(err, r, "the disks' copy did not reach %s: %s", s->addr,
                                strerror(-r));
        sent += n;
        if (ready == 1)
            break;
        if (vmha_deadline_passed(&dl))
            return vmha_err_set(err, -ETIMEDOUT,
                                "the disks' copy (%" PRIu64 " of %" PRIu64 " bytes) did not "
                                "finish in time",
                                sent, total);
        if (remus_stop_requested)
            return vmha_err_set(err, -ECANCELED, "asked to stop");
        if (n == 0)
            usleep(50 * 1000);
    }
    unsigned char end[REMUS_DREC_LEN] = {0xff, 0xff, 0xff, 0xff};
    if ((r = chan_write_all(ch, end, sizeof(end), &dl)) < 0)
        return vmha_err_set(err, r, "cannot send to the replica at %s: %s", s->addr, strerror(-r));
    cluster_log(LOG_NOTICE, "guest %s: its disks are copied to %s (%" PRIu64 " bytes)", x->guest,
                s->peer, sent);
    return 0;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One epoch to the current peer. On success the checkpoint is committed at the backup and
 * the output before it released; the guest stays paused when final (a demote). On failure
 * the guest runs and its output is still held. */
/* One epoch as it goes: its connection, deadline and what it measured. */
struct epoch {
    struct chan ch;
    struct vmha_deadline dl;
    uint64_t n, t0, t_paused, us[6]; /* us: for --stats, the epoch's steps */
    bool full;                       /* the first of a session: the whole memory as a base */
    size_t base, pages, dev_len, disk_bytes;
    struct hv_ckpt_stats st;
};

/* Connected, authenticated, the header sent, and the backup's GO: it is ready to take the
 * checkpoint (it may have been writing the last one's memory to file), so the guest is not
 * paused to wait for it, for as long as a whole memory's write may take. */
static int epoch_open(struct sender *s, struct epoch *ep, struct vmha_err *err)
{
    struct remus_ctx *x = s->x;
    ep->ch.fd = remus_connect(s->addr, &ep->dl, err);
    if (ep->ch.fd < 0)
        return ep->ch.fd;
    vmha_tune_socket(ep->ch.fd, x->timeout_ms);
    int r = chan_client(&ep->ch, x, s->addr, &ep->dl, err);
    if (r < 0)
        return r;
    struct remus_epoch_id id = {.session = x->st.session, .epoch = ep->n};
    snprintf(id.guest, sizeof(id.guest), "%s", x->guest);
    char hdr[REMUS_HEADER_MAX];
    int n = remus_header_format(&id, hdr, sizeof(hdr));
    if (n < 0)
        return vmha_err_set(err, n, "guest name %s cannot travel in the stream", x->guest);
    if ((r = chan_write_all(&ep->ch, hdr, (size_t)n, &ep->dl)) < 0)
        return vmha_err_set(err, r, "cannot send to the replica at %s: %s", s->addr, strerror(-r));
    struct vmha_deadline go = vmha_deadline_in(x->timeout_ms + s->ram_size / 52429);
    return read_answer(&ep->ch, ep->n, "GO", &go, err);
}

/* The first epoch of a session sends a base while the guest runs: the pause then covers only
 * what changed since. It carries all of the memory, so it gets time for that on top of
 * checkpoint_timeout (20 ms per MiB: 50 MB/s at least), and the checkpoint its own deadline
 * after. From here the shadow runs ahead of the backup until it acknowledges. */
static int epoch_base(struct sender *s, struct epoch *ep, struct vmha_err *err)
{
    ep->full = !s->synced;
    s->synced = false;
    if (!ep->full)
        return 0;
    int r = send_disk_base(s, &ep->ch, err);
    if (r < 0)
        return r;
    struct vmha_deadline bdl = vmha_deadline_in(s->x->timeout_ms + s->ram_size / 52429);
    ep->base = track_scan(s, true);
    r = send_ram(s, &ep->ch, ep->base, true, &bdl);
    if (r < 0)
        return vmha_err_set(err, r, "cannot send to the replica at %s: %s", s->addr, strerror(-r));
    ep->dl = vmha_deadline_in(s->x->timeout_ms);
    return 0;
}

/* The paused part: the guest paused at the checkpoint, what changed and the device state
 * sent, and the backup's ACK. On success the guest is still paused; on failure after the
 * pause, *paused says so (the caller resumes it). */
static int epoch_paused(struct sender *s, struct epoch *ep, bool *paused, struct vmha_err *err)
{
    struct collect dev = {0};
    /* QEMU drains the disks' writes as it pauses the guest: none may wait for the log. */
    if (s->mirror_open)
        remus_mirror_pausing(&s->mirror, true);
    int r = take(s, &ep->dl, &dev, &ep->st, err);
    if (s->mirror_open)
        remus_mirror_pausing(&s->mirror, false);
    if (r < 0) {
        free(dev.buf);
        return r;
    }
    *paused = true;
    ep->t_paused = vmha_now_ms();
    ep->us[1] = now_us();
    struct pollfd gone = {.fd = s->qemu, .events = POLLIN};
    if (poll(&gone, 1, 0) != 0) {
        free(dev.buf);
        s->qemu_gone = true;
        return vmha_err_set(err, -ESRCH,
                            "the QEMU whose memory this replication reads has "
                            "exited: replication starts again");
    }
    ep->pages = track_scan(s, false);
    ep->us[2] = now_us();
    r = send_ram(s, &ep->ch, ep->pages, false, &ep->dl);
    if (r == 0)
        r = send_disks(s, &ep->ch, &ep->disk_bytes, &ep->dl);
    struct vmha_err nerr = {0};
    if (r == 0 && (r = send_nvram(s, &ep->ch, ep->full, &ep->dl, &nerr)) < 0) {
        free(dev.buf);
        return vmha_err_set(err, r, "checkpoint %" PRIu64 ": %s", ep->n, nerr.msg);
    }
    if (r == 0)
        r = send_dev(s, &ep->ch, &dev, ep->full, &ep->dev_len, &ep->dl);
    free(dev.buf);
    unsigned char trailer[REMUS_TRAILER_LEN];
    remus_trailer_make(ep->n, trailer);
    if (r < 0 || (r = chan_write_all(&ep->ch, trailer, sizeof(trailer), &ep->dl)) < 0 ||
        (r = chan_shutdown_wr(&ep->ch)) < 0)
        return vmha_err_set(err, r < 0 ? r : -errno, "checkpoint %" PRIu64 " did not reach %s",
                            ep->n, s->addr);
    char ack[64];
    snprintf(ack, sizeof(ack), "ACK %" PRIu64, ep->n);
    if ((r = read_answer(&ep->ch, ep->n, ack, &ep->dl, err)) < 0)
        return r;
    ep->us[3] = now_us();
    return 0;
}

/* The backup holds the checkpoint: it is the committed one, and the output the guest produced
 * before it may go out. */
static int epoch_commit(struct sender *s, struct epoch *ep, struct vmha_err *err)
{
    struct remus_ctx *x = s->x;
    s->synced = true;
    if (s->dev_next) { /* what the backup holds now */
        free(s->dev);
        s->dev = s->dev_next;
        s->dev_len = s->dev_next_len;
        s->dev_next = NULL;
    }
    if (s->nvram_next) {
        free(s->nvram);
        s->nvram = s->nvram_next;
        s->nvram_len = s->nvram_next_len;
        s->nvram_next = NULL;
    }
    x->st.epoch = ep->n;
    x->st.committed_ms = remus_realtime_ms();
    x->st.bytes = ep->dev_len + (ep->full ? 32 : 0) + 32 +
                  (ep->base + ep->pages) * (8 + REMUS_PAGE) + ep->disk_bytes;
    x->st.ckpt_ms = vmha_now_ms() - ep->t0;
    x->st.epochs++;
    struct vmha_err e = {0};
    int r = hv_ckpt_release(s->hv, x->guest, false, &e);
    if (r < 0)
        return vmha_err_set(err, r,
                            "checkpoint %" PRIu64 " committed, but its output cannot be "
                            "released: %s",
                            ep->n, e.msg);
    return 0;
}

/* --stats: start ms, epoch, pause ms, checkpoint ms, bytes, pages, full; then µs spent
 * taking the device state, finding the changed pages, sending them until the ACK, releasing
 * the output, resuming the guest. */
static void epoch_stats(const struct sender *s, const struct epoch *ep)
{
    const struct remus_ctx *x = s->x;
    if (!x->stats)
        return;
    fprintf(x->stats, "%llu %llu %llu %llu %llu %zu %d", (unsigned long long)ep->t0,
            (unsigned long long)ep->n, (unsigned long long)x->st.pause_ms,
            (unsigned long long)x->st.ckpt_ms, (unsigned long long)x->st.bytes, ep->pages,
            ep->full);
    for (int i = 1; i < 6; i++)
        fprintf(x->stats, " %llu", (unsigned long long)(ep->us[i] - ep->us[i - 1]));
    fputc('\n', x->stats);
    fflush(x->stats);
}

/* One checkpoint, from connecting to the guest running again (with final, the guest stays
 * paused after its output is released: a demote). */
static int epoch_once(struct sender *s, bool final, struct vmha_err *err)
{
    struct remus_ctx *x = s->x;
    struct epoch ep = {.n = x->st.epoch + 1,
                       .dl = vmha_deadline_in(x->timeout_ms),
                       .t0 = vmha_now_ms(),
                       .us = {now_us()},
                       .ch = {.fd = -1}};
    bool paused = false;
    int r = epoch_open(s, &ep, err);
    if (r == 0)
        r = epoch_base(s, &ep, err);
    if (r == 0)
        r = epoch_paused(s, &ep, &paused, err);
    chan_close(&ep.ch);
    if (r == 0)
        r = epoch_commit(s, &ep, err);
    if (r == 0 && final)
        return 0;
    if (!paused)
        return r;
    ep.us[4] = now_us();
    struct vmha_err e = {0};
    if (hv_resume(s->hv, x->guest, &e) < 0) {
        if (r < 0) {
            cluster_log(LOG_ERR, "cannot resume guest %s after a failed checkpoint: %s", x->guest,
                        e.msg);
            return r;
        }
        return vmha_err_set(err, e.code, "cannot resume the guest after checkpoint %" PRIu64 ": %s",
                            ep.n, e.msg);
    }
    if (r < 0)
        return r;
    ep.us[5] = now_us();
    x->st.pause_ms = ep.st.paused_ms + (vmha_now_ms() - ep.t_paused);
    epoch_stats(s, &ep);
    return 0;
}

/* The backup this primary streams to: a node other than this one that advertises a
 * replica of the guest. */
bool remus_find_peer(struct remus_ctx *x, char *peer, size_t psize, char *addr, size_t asize)
{
    struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    char attr[300];
    snprintf(attr, sizeof(attr), REMUS_ATTR_REPLICA "%s", x->guest);
    peer[0] = addr[0] = '\0';
    if (cluster_read(&dl, &v, &e) < 0) {
        cluster_log(LOG_WARNING, "cannot read the cluster to find %s's replica: %s", x->guest,
                    e.msg);
        return false;
    }
    for (size_t i = 0; i < v.n && !peer[0]; i++) {
        const char *a = cluster_node_attr(&v.nodes[i], attr, true);
        if (a && a[0] && v.nodes[i].online && strcmp(v.nodes[i].name, x->node) != 0) {
            snprintf(peer, psize, "%s", v.nodes[i].name);
            snprintf(addr, asize, "%s", a);
        }
    }
    cluster_view_clear(&v);
    return peer[0] != '\0';
}

int remus_mark_stale(struct remus_ctx *x, const char *peer, uint64_t epoch,
                     const struct vmha_deadline *dl, struct vmha_err *err)
{
    char replica[300], stale[300], mark[64];
    snprintf(replica, sizeof(replica), REMUS_ATTR_REPLICA "%s", x->guest);
    snprintf(stale, sizeof(stale), REMUS_ATTR_STALE "%s", x->guest);
    remus_stale_format(x->st.session, epoch, mark, sizeof(mark));
    for (;;) {
        struct cluster_view v = {0};
        int r = cluster_read(dl, &v, err);
        if (r < 0)
            return r;
        /* A partition without quorum can write its own CIB, but that is not the cluster's
         * word: the other side may promote the replica without ever seeing the mark. */
        if (!v.quorate) {
            cluster_view_clear(&v);
            if (!vmha_deadline_sleep(dl, 500))
                return vmha_err_set(err, -ENOLINK,
                                    "this node's partition has no quorum: "
                                    "cannot mark %s's replicas stale",
                                    x->guest);
            continue;
        }
        size_t pending = 0;
        for (size_t i = 0; i < v.n; i++) {
            const struct cluster_node *n = &v.nodes[i];
            /* An offline node's replica cannot be promoted before the node is fenced, and a
             * fenced node comes back with an empty replica (it lives in /run). */
            if (strcmp(n->name, x->node) == 0 || !n->online)
                continue;
            const char *has = cluster_node_attr(n, replica, true);
            const char *now = cluster_node_attr(n, stale, true);
            bool wanted = (has && has[0]) || strcmp(n->name, peer) == 0 || (now && now[0]);
            if (!wanted || (now && strcmp(now, mark) == 0))
                continue;
            pending++;
            struct vmha_err e = {0};
            if (cluster_attr_update(n->name, stale, mark, dl, &e) < 0)
                cluster_log(LOG_WARNING, "cannot mark %s's replica on %s stale: %s", x->guest,
                            n->name, e.msg);
        }
        cluster_view_clear(&v);
        if (pending == 0)
            return 0;
        if (!vmha_deadline_sleep(dl, 200))
            return vmha_err_set(err, -ETIMEDOUT,
                                "the cluster did not record the stale mark "
                                "of %s's replicas in time",
                                x->guest);
    }
}

void remus_renew_mark(struct remus_ctx *x, const char *peer)
{
    char stale[300], mark[64];
    snprintf(stale, sizeof(stale), REMUS_ATTR_STALE "%s", x->guest);
    struct vmha_deadline dl = vmha_deadline_in(10000);
    struct cluster_view v = {0};
    struct vmha_err e = {0};
    if (cluster_read(&dl, &v, &e) < 0) {
        cluster_log(LOG_WARNING, "cannot read the stale mark of %s's replica: %s", x->guest, e.msg);
        return;
    }
    const struct cluster_node *n = cluster_node_find(&v, peer);
    const char *now = n ? cluster_node_attr(n, stale, true) : NULL;
    char session[32];
    snprintf(session, sizeof(session), "%016llx ", (unsigned long long)x->st.session);
    bool foreign = now && now[0] && strncmp(now, session, strlen(session)) != 0;
    if (foreign)
        snprintf(mark, sizeof(mark), "%s", now);
    cluster_view_clear(&v);
    if (!foreign)
        return;
    /* Marks nothing of this session, and everything of any other, as before. */
    char renewed[64];
    remus_stale_format(x->st.session, 0, renewed, sizeof(renewed));
    if (cluster_attr_update(peer, stale, renewed, &dl, &e) < 0)
        cluster_log(LOG_WARNING, "cannot renew the stale mark of %s's replica on %s: %s", x->guest,
                    peer, e.msg);
    else
        cluster_log(LOG_NOTICE,
                    "guest %s: the replica on %s holds this session's checkpoints; "
                    "its stale mark from an earlier session (%s) no longer applies",
                    x->guest, peer, mark);
}

/* No working backup: output flows freely from now on, once the replicas are marked. */
static void unprotect(struct sender *s, const char *why)
{
    struct remus_ctx *x = s->x;
    if (s->held) {
        /* Until the cluster has the mark, a promoted replica could undo what a client saw:
         * keep holding (the guest runs; its network waits) and try again. */
        for (;;) {
            struct vmha_deadline dl = vmha_deadline_in(10000);
            struct vmha_err e = {0};
            if (remus_mark_stale(x, s->peer, x->st.epoch + 1, &dl, &e) == 0)
                break;
            cluster_log(LOG_ERR, "guest %s: %s; its output stays held", x->guest, e.msg);
            if (remus_stop_requested)
                return;
        }
        struct vmha_err e = {0};
        if (hv_ckpt_release(s->hv, x->guest, true, &e) < 0) {
            cluster_log(LOG_ERR, "guest %s: cannot release its held output: %s", x->guest, e.msg);
            return;
        }
        s->held = false;
        cluster_log(LOG_WARNING, "guest %s runs unprotected: %s", x->guest, why);
    }
    /* No backup to send the disks' writes to: the guest's writes no longer wait for us. */
    if (s->mirror_open && s->mirror.mirrored) {
        remus_mirror_stop(&s->mirror, s->hv);
        unsigned char *log = NULL;
        remus_mirror_take(&s->mirror, &log);
        free(log);
    }
    snprintf(x->st.state, sizeof(x->st.state), "degraded");
    snprintf(x->st.error, sizeof(x->st.error), "%s", why);
    x->st.peer[0] = '\0';
    remus_publish(x);
}

static int hold(struct sender *s, struct vmha_err *err)
{
    if (s->held)
        return 0;
    int r = hv_ckpt_hold(s->hv, s->x->guest, err);
    if (r == 0)
        s->held = true;
    return r;
}

/* Until at_ms, or until the disks' log is half full (the guest's writes would soon wait). */
static void pause_until(struct sender *s, uint64_t at_ms)
{
    while (!remus_stop_requested && !remus_demote_requested) {
        if (s->mirror_open && remus_mirror_pending(&s->mirror) > s->mirror.limit / 2)
            return;
        uint64_t now = vmha_now_ms();
        if (now >= at_ms)
            return;
        uint64_t d = at_ms - now;
        usleep((useconds_t)(d > 200 ? 200000 : d * 1000));
    }
}

/* The connection, the guest's memory, a session number, and its output held: from here on
 * nothing leaves the guest before a checkpoint covers it. */
static int sender_start(struct sender *s, struct vmha_err *err)
{
    struct remus_ctx *x = s->x;
    struct vmha_deadline dl = vmha_deadline_in(30000);
    int r = hv_open(x->uri, &dl, &s->hv, err);
    if (r < 0 || (r = track_open(s, err)) < 0)
        return r;
    if (getrandom(&x->st.session, sizeof(x->st.session), 0) != sizeof(x->st.session))
        x->st.session = (uint64_t)vmha_now_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(x->st.role, sizeof(x->st.role), "primary");
    snprintf(x->st.state, sizeof(x->st.state), "syncing");
    if ((r = hold(s, err)) < 0)
        return r;
    if (hv_can(s->hv, HV_FEAT_NVRAM)) {
        struct vmha_err e = {0};
        if (hv_nvram_path(s->hv, x->guest, &s->nvram_path, &e) < 0 && e.code != -ENOENT)
            return vmha_err_set(err, e.code, "cannot find the guest's NVRAM: %s", e.msg);
    }
    if (x->disks.n) {
        if ((r = remus_mirror_open(&s->mirror, x, s->qemu_pid, err)) < 0) {
            remus_mirror_close(&s->mirror, s->hv);
            return r;
        }
        s->mirror_open = true;
    }
    remus_publish(x);
    cluster_log(LOG_NOTICE, "replicating guest %s every %llu ms (session %016llx)", x->guest,
                (unsigned long long)x->interval_ms, (unsigned long long)x->st.session);
    return 0;
}

static void sender_end(struct sender *s)
{
    free(s->nvram_path);
    free(s->nvram);
    free(s->nvram_next);
    free(s->dev);
    free(s->dev_next);
    if (s->mirror_open)
        remus_mirror_close(&s->mirror, s->hv);
    hv_close(s->hv);
    if (s->ram)
        munmap((void *)s->ram, s->ram_size);
    free(s->shadow);
    free(s->dirty);
    if (s->qemu >= 0)
        close(s->qemu);
}

/* A checkpoint committed: the status says so. true when replication ends here (a demote's
 * final checkpoint). */
static bool epoch_done(struct sender *s, bool final)
{
    struct remus_ctx *x = s->x;
    bool first = strcmp(x->st.state, "protected") != 0;
    snprintf(x->st.state, sizeof(x->st.state), final ? "demoted" : "protected");
    snprintf(x->st.peer, sizeof(x->st.peer), "%s", s->peer);
    x->st.error[0] = '\0';
    remus_publish(x);
    if (first) {
        cluster_log(LOG_NOTICE,
                    "guest %s is protected by its replica on %s "
                    "(checkpoint %llu, %llu bytes in %llu ms)",
                    x->guest, s->peer, (unsigned long long)x->st.epoch,
                    (unsigned long long)x->st.bytes, (unsigned long long)x->st.ckpt_ms);
        remus_renew_mark(x, s->peer);
    }
    if (final)
        cluster_log(LOG_NOTICE, "guest %s handed over to %s at checkpoint %llu", x->guest, s->peer,
                    (unsigned long long)x->st.epoch);
    return final;
}

/* A checkpoint failed (err): the next one goes to whichever backup the cluster names. true
 * when replication ends here, with *rc its exit code. */
static bool epoch_failed(struct sender *s, bool final, const struct vmha_err *err, int *rc)
{
    struct remus_ctx *x = s->x;
    x->st.failures++;
    cluster_log(LOG_WARNING, "guest %s: %s", x->guest, err->msg);
    s->peer[0] = '\0';
    if (final) {
        /* The guest runs here, output held: the demote fails, nothing is lost. */
        snprintf(x->st.error, sizeof(x->st.error), "%s", err->msg);
        remus_publish(x);
        *rc = 1;
        return true;
    }
    unprotect(s, err->msg);
    if (s->qemu_gone) { /* the monitor starts a replication of the new QEMU */
        *rc = remus_fail(x, err);
        return true;
    }
    return false;
}

int remus_send(struct remus_ctx *x)
{
    struct sender s = {.x = x, .qemu = -1};
    struct vmha_err err = {0};
    if (sender_start(&s, &err) < 0) {
        sender_end(&s);
        return remus_fail(x, &err);
    }
    int rc = 0;
    while (!remus_stop_requested) {
        bool final = remus_demote_requested;
        if (!s.peer[0] && !remus_find_peer(x, s.peer, sizeof(s.peer), s.addr, sizeof(s.addr))) {
            if (final) {
                snprintf(x->st.error, sizeof(x->st.error), "no replica to hand the guest to");
                snprintf(x->st.state, sizeof(x->st.state), "failed");
                remus_publish(x);
                rc = 3;
                break;
            }
            unprotect(&s, "no replica to send checkpoints to");
            pause_until(&s, vmha_now_ms() + 1000);
            continue;
        }
        if (hold(&s, &err) < 0) {
            cluster_log(LOG_ERR, "guest %s: %s", x->guest, err.msg);
            rc = remus_fail(x, &err);
            break;
        }
        if (epoch_once(&s, final, &err) == 0 ? epoch_done(&s, final)
                                             : epoch_failed(&s, final, &err, &rc))
            break;
        /* The guest runs this long between two checkpoints, as under Xen's Remus: a
         * checkpoint that takes longer than the interval does not starve it. */
        pause_until(&s, vmha_now_ms() + x->interval_ms);
    }
    if (remus_stop_requested && s.held && !remus_demote_requested)
        unprotect(&s, "replication stopped");
    sender_end(&s);
    return rc;
}
