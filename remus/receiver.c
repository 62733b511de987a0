/* The backup's side: accept one epoch's stream at a time, keep it only if it is whole,
 * commit it by rename (the previous checkpoint stays until then), acknowledge. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
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
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

/* The most a body may hold: a first checkpoint's base and its changes (each at most every
 * page of the guest's memory) and the device state. Nothing larger is written to the
 * backup's files, which live in host memory (/run). */
static uint64_t body_max(const struct remus_ctx *x)
{
    uint64_t pages = x->memory / REMUS_PAGE;
    return 2 * (32 + pages * (8 + REMUS_PAGE)) + 16 + REMUS_DEV_MAX;
}

/* The body in part is whole, its memory is the guest's, and it follows what this replica
 * holds: a full checkpoint of a new session or one later in this session, or the changes
 * since the epoch this replica holds. An older epoch is never taken again. */
static int check_body(struct remus_ctx *x, const char *part, const struct remus_epoch_id *id,
                      struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
        return vmha_err_set(err, -EIO, "cannot read %s back", part);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return vmha_err_set(err, -errno, "cannot read %s back: %s", part, strerror(errno));
    struct remus_body b;
    int r = remus_body_parse(m, (size_t)st.st_size, &b, err);
    munmap(m, (size_t)st.st_size);
    if (r < 0)
        return r;
    if (b.ram_size != x->memory)
        return vmha_err_set(err, -EPROTO, "checkpoint %" PRIu64 " carries %" PRIu64 " bytes of "
                            "memory, but guest %s has %" PRIu64, id->epoch, b.ram_size, x->guest,
                            x->memory);
    uint64_t session = 0, epoch = 0;
    char path[4200];
    bool held = remus_checkpoint(x->dir, &session, &epoch, path, sizeof(path)) == 0;
    bool same = held && session == id->session;
    if (same && id->epoch <= epoch)
        return vmha_err_set(err, -ESTALE, "checkpoint %" PRIu64 " of session %016" PRIx64
                            " is not newer than the one this replica holds (%" PRIu64 "): "
                            "refused", id->epoch, id->session, epoch);
    if (!b.full && (!same || epoch + 1 != id->epoch))
        return vmha_err_set(err, -ESTALE, "checkpoint %" PRIu64 " holds the changes since %"
                            PRIu64 ", but this replica holds %016" PRIx64 "/%" PRIu64 ": it "
                            "needs a whole one", id->epoch, id->epoch - 1, session, epoch);
    return 0;
}

/* The header line, by dl. */
static int read_header(struct chan *ch, struct remus_epoch_id *id,
                       const struct vmha_deadline *dl, struct vmha_err *err)
{
    char line[REMUS_HEADER_MAX];
    size_t len = 0;
    while (len + 1 < sizeof(line)) {
        ssize_t n = chan_read(ch, line + len, 1, dl);
        if (n <= 0)
            return vmha_err_set(err, n < 0 ? (int)n : -EPIPE, "no checkpoint header: %s",
                                n < 0 ? strerror((int)-n) : "connection closed");
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    return remus_header_parse(line, id, err);
}

/* The body and trailer into part, by dl, at most max bytes: the bytes kept, or -errno. */
static int64_t read_body(struct chan *ch, int out, const char *part, uint64_t epoch,
                         uint64_t max, const struct vmha_deadline *dl, struct vmha_err *err)
{
    /* Everything but the last REMUS_TRAILER_LEN bytes is file: hold those back. */
    static unsigned char buf[1 << 20];
    size_t held = 0;
    uint64_t bytes = 0;
    for (;;) {
        ssize_t n = chan_read(ch, buf + held, sizeof(buf) - held, dl);
        if (n < 0)
            return vmha_err_set(err, (int)n, "checkpoint %" PRIu64 " broke off after %" PRIu64
                                " bytes: %s", epoch, bytes, strerror((int)-n));
        if (n == 0)
            break;
        held += (size_t)n;
        if (held <= REMUS_TRAILER_LEN)
            continue;
        size_t flush = held - REMUS_TRAILER_LEN;
        if (bytes + flush > max)
            return vmha_err_set(err, -EFBIG, "checkpoint %" PRIu64 " is larger than any of "
                                "this guest's can be (%" PRIu64 " bytes): dropped", epoch, max);
        int r = vmha_write_all(out, buf, flush);
        if (r < 0)
            return vmha_err_set(err, r, "cannot write %s: %s", part, strerror(-r));
        memmove(buf, buf + flush, REMUS_TRAILER_LEN);
        held = REMUS_TRAILER_LEN;
        bytes += flush;
    }
    if (held != REMUS_TRAILER_LEN || !remus_trailer_ok(buf, epoch))
        return vmha_err_set(err, -EPIPE, "checkpoint %" PRIu64 " is incomplete (%" PRIu64
                            " bytes): dropped", epoch, bytes);
    return (int64_t)bytes;
}

/* Commits the checkpoint in part: the previous epoch is applied before this one replaces
 * its journal, then the journal's identity is recorded. */
static int commit(struct remus_ctx *x, const char *part, const struct remus_epoch_id *id,
                  struct vmha_err *err)
{
    char final[4096];
    if (snprintf(final, sizeof(final), "%s/ckpt.jrnl", x->dir) >= (int)sizeof(final))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", x->dir);
    int r = check_body(x, part, id, err);
    if (r < 0 || (r = remus_journal_apply(x->dir, err)) < 0)
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
static int receive_epoch(struct remus_ctx *x, struct chan *ch, const struct vmha_deadline *hdl,
                         struct vmha_err *err)
{
    struct remus_epoch_id id;
    int r = read_header(ch, &id, hdl, err);
    if (r < 0)
        return r;
    if (strcmp(id.guest, x->guest) != 0)
        return vmha_err_set(err, -EPROTO, "a checkpoint of guest %s arrived at %s's replica",
                            id.guest, x->guest);
    struct vmha_deadline dl = vmha_deadline_in(2 * x->timeout_ms + x->memory / 52429);
    /* The last epoch is applied (see the end): the primary may pause its guest. */
    if ((r = chan_write_all(ch, "GO\n", 3, &dl)) < 0)
        return vmha_err_set(err, r, "the primary is gone: %s", strerror(-r));
    char part[4096];
    if (snprintf(part, sizeof(part), "%s/ckpt.part", x->dir) >= (int)sizeof(part))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", x->dir);
    unlink(part);
    _cleanup_(closep) int out =
        open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return vmha_err_set(err, -errno, "cannot create %s: %s", part, strerror(errno));
    int64_t bytes = read_body(ch, out, part, id.epoch, body_max(x), &dl, err);
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

/* Connections whose peer has not proven itself yet. Their handshakes advance side by side,
 * so a peer that connects and says nothing delays no one: the primary's next checkpoint is
 * served as soon as its handshake is through. */
#define PENDING_MAX 16
#define HANDSHAKE_MS 2000

struct pending {
    struct chan ch;
    struct vmha_deadline dl;
    char from[64];
};

static void refuse(struct remus_ctx *x, struct pending *p, const char *why)
{
    x->st.refused++;
    /* Whoever knocks without the key could fill the log: say so sparingly. */
    static uint64_t said_at;
    if (x->st.refused <= 3 || vmha_now_ms() - said_at > 60000) {
        said_at = vmha_now_ms();
        cluster_log(LOG_WARNING, "replica of %s: refused a connection from %s: %s (%llu so far)",
                    x->guest, p->from, why, (unsigned long long)x->st.refused);
    }
    chan_close(&p->ch);
    remus_publish(x);
}

static void peer_name(int fd, char *buf, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char host[64] = "?";
    if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0)
        getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
    snprintf(buf, size, "%s", host);
}

static void accept_one(struct remus_ctx *x, int lfd, struct pending *pend, size_t *n)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (*n == PENDING_MAX) { /* the oldest has had the longest to prove itself */
        refuse(x, &pend[0], "too many connections waiting to authenticate");
        memmove(pend, pend + 1, (PENDING_MAX - 1) * sizeof(*pend));
        (*n)--;
    }
    struct pending *p = &pend[(*n)++];
    *p = (struct pending){.ch = {.fd = fd}, .dl = vmha_deadline_in(HANDSHAKE_MS)};
    peer_name(fd, p->from, sizeof(p->from));
    vmha_tune_socket(fd, x->timeout_ms);
    struct vmha_err e = {0};
    if (chan_server_start(&p->ch, x, &e) < 0) {
        refuse(x, p, e.msg);
        (*n)--;
    }
}

/* A peer proven to be the cluster's primary: its epoch, answered. */
static void serve(struct remus_ctx *x, struct pending *p)
{
    struct vmha_err e = {0};
    if (receive_epoch(x, &p->ch, &p->dl, &e) < 0) {
        x->st.failures++;
        snprintf(x->st.error, sizeof(x->st.error), "%s", e.msg);
        cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
        char nak[300];
        int n = snprintf(nak, sizeof(nak), "NAK %s\n", e.msg);
        struct vmha_deadline nd = vmha_deadline_in(1000);
        chan_write_all(&p->ch, nak, (size_t)(n < (int)sizeof(nak) ? n : (int)sizeof(nak) - 1),
                       &nd);
    } else {
        x->st.error[0] = '\0';
        if (x->st.epochs == 1 || x->st.epochs % 100 == 0)
            cluster_log(LOG_INFO, "replica of %s holds checkpoint %llu (%llu epochs)", x->guest,
                        (unsigned long long)x->st.epoch, (unsigned long long)x->st.epochs);
    }
    chan_close(&p->ch);
    snprintf(x->st.state, sizeof(x->st.state), "%s", x->st.epoch ? "holding" : "listening");
    remus_publish(x);
}

int remus_receive(struct remus_ctx *x)
{
    struct vmha_err err = {0};
    _cleanup_(closep) int lfd = remus_listen(x->listen, &err);
    if (lfd < 0)
        return remus_fail(x, &err);
    snprintf(x->st.role, sizeof(x->st.role), "backup");
    snprintf(x->st.state, sizeof(x->st.state), "listening");
    remus_publish(x);
    remus_advertise(x, true);
    if (x->auth == REMUS_AUTH_NONE)
        cluster_log(LOG_WARNING, "replica of %s takes checkpoints from ANYONE who reaches %s "
                    "(replication_insecure=true): for a lab only", x->guest, x->listen);
    static struct pending pend[PENDING_MAX];
    size_t n = 0;
    while (!remus_stop_requested) {
        struct pollfd pfd[PENDING_MAX + 1] = {{.fd = lfd, .events = POLLIN}};
        for (size_t i = 0; i < n; i++)
            pfd[i + 1] = (struct pollfd){.fd = pend[i].ch.fd, .events = POLLIN};
        if (poll(pfd, n + 1, 200) < 0 && errno != EINTR)
            break;
        for (size_t i = n; i-- > 0;) {
            struct pending *p = &pend[i];
            int r = 0;
            struct vmha_err e = {0};
            if (pfd[i + 1].revents)
                r = chan_server_step(&p->ch, x, &e);
            if (r == 0 && vmha_deadline_passed(&p->dl))
                r = vmha_err_set(&e, -ETIMEDOUT, "it did not authenticate in time");
            if (r == 0)
                continue;
            if (r < 0) {
                refuse(x, p, e.msg);
            } else {
                p->dl = vmha_deadline_in(x->timeout_ms < HANDSHAKE_MS ? x->timeout_ms
                                                                      : HANDSHAKE_MS);
                serve(x, p);
            }
            memmove(p, p + 1, (n - i - 1) * sizeof(*p));
            n--;
        }
        if (pfd[0].revents)
            accept_one(x, lfd, pend, &n);
    }
    for (size_t i = 0; i < n; i++)
        chan_close(&pend[i].ch);
    remus_advertise(x, false);
    cluster_log(LOG_NOTICE, "replica of %s stops (last checkpoint %llu kept)", x->guest,
                (unsigned long long)x->st.epoch);
    return 0;
}
