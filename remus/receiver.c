/* The backup's side: accept one epoch's stream at a time, keep it only if it is whole,
 * commit it by rename (the previous checkpoint stays until then), acknowledge. */
#include <errno.h>
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

/* The body in part is whole and fits what this replica holds: a full checkpoint, or the
 * changes since the epoch before it, of the same session. */
static int check_body(struct remus_ctx *x, const char *part, const struct remus_epoch_id *id,
                      struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(part, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0)
        return vmha_err_set(err, -EIO, "cannot read %s back", part);
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return vmha_err_set(err, -errno, "cannot read %s back: %s", part, strerror(errno));
    struct remus_body b;
    int r = remus_body_parse(m, (size_t)st.st_size, &b, err);
    munmap(m, (size_t)st.st_size);
    if (r < 0 || b.full)
        return r;
    uint64_t session = 0, epoch = 0;
    char path[4200];
    if (remus_checkpoint(x->dir, &session, &epoch, path, sizeof(path)) < 0 ||
        session != id->session || epoch + 1 != id->epoch)
        return vmha_err_set(err, -ESTALE, "checkpoint %llu holds the changes since %llu, but "
                            "this replica holds %016llx/%llu: it needs a whole one",
                            (unsigned long long)id->epoch, (unsigned long long)id->epoch - 1,
                            (unsigned long long)session, (unsigned long long)epoch);
    return 0;
}

/* One connection: header, body, trailer; commit; answer. */
static int receive_epoch(struct remus_ctx *x, struct chan *ch, struct vmha_err *err)
{
    /* A stream that stalls for the epoch timeout is a dead primary or a dead link. */
    struct vmha_deadline dl = vmha_deadline_in(x->timeout_ms);
    char line[REMUS_HEADER_MAX];
    size_t len = 0;
    while (len + 1 < sizeof(line)) {
        ssize_t n = chan_read(ch, line + len, 1, &dl);
        if (n <= 0)
            return vmha_err_set(err, n < 0 ? (int)n : -EPIPE, "no checkpoint header: %s",
                                n < 0 ? strerror((int)-n) : "connection closed");
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    struct remus_epoch_id id;
    int r = remus_header_parse(line, &id, err);
    if (r < 0)
        return r;
    if (strcmp(id.guest, x->guest) != 0)
        return vmha_err_set(err, -EPROTO, "a checkpoint of guest %s arrived at %s's replica",
                            id.guest, x->guest);
    /* The last epoch is applied (see the end): the primary may pause its guest. */
    if ((r = chan_write_all(ch, "GO\n", 3, &dl)) < 0)
        return vmha_err_set(err, r, "the primary is gone: %s", strerror(-r));
    char part[4096], final[4096];
    snprintf(part, sizeof(part), "%s/ckpt.part", x->dir);
    snprintf(final, sizeof(final), "%s/ckpt.jrnl", x->dir);
    _cleanup_(closep) int out = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return vmha_err_set(err, -errno, "cannot create %s: %s", part, strerror(errno));
    /* Everything but the last REMUS_TRAILER_LEN bytes is file: hold those back. */
    static unsigned char buf[1 << 20];
    size_t held = 0;
    uint64_t bytes = 0;
    for (;;) {
        dl = vmha_deadline_in(x->timeout_ms);
        ssize_t n = chan_read(ch, buf + held, sizeof(buf) - held, &dl);
        if (n < 0) {
            unlink(part);
            return vmha_err_set(err, (int)n, "checkpoint %llu broke off after %llu bytes: %s",
                                (unsigned long long)id.epoch, (unsigned long long)bytes,
                                strerror((int)-n));
        }
        if (n == 0)
            break;
        held += (size_t)n;
        if (held > REMUS_TRAILER_LEN) {
            size_t flush = held - REMUS_TRAILER_LEN;
            if ((r = vmha_write_all(out, buf, flush)) < 0) {
                unlink(part);
                return vmha_err_set(err, r, "cannot write %s: %s", part, strerror(-r));
            }
            memmove(buf, buf + flush, REMUS_TRAILER_LEN);
            held = REMUS_TRAILER_LEN;
            bytes += flush;
        }
    }
    if (held != REMUS_TRAILER_LEN || !remus_trailer_ok(buf, id.epoch)) {
        unlink(part);
        return vmha_err_set(err, -EPIPE, "checkpoint %llu is incomplete (%llu bytes): dropped",
                            (unsigned long long)id.epoch, (unsigned long long)bytes);
    }
    /* The checkpoint only has to outlive the primary, not this host: no fsync. */
    if (close(out) < 0) {
        out = -1;
        unlink(part);
        return vmha_err_set(err, -errno, "cannot write %s: %s", part, strerror(errno));
    }
    out = -1;
    if ((r = check_body(x, part, &id, err)) < 0) {
        unlink(part);
        return r;
    }
    /* The previous epoch is applied before this one replaces its journal: the commit. */
    if ((r = remus_journal_apply(x->dir, err)) < 0 || rename(part, final) < 0) {
        if (r == 0)
            r = vmha_err_set(err, -errno, "cannot commit %s: %s", final, strerror(errno));
        unlink(part);
        return r;
    }
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char session[32], epoch[32];
    snprintf(session, sizeof(session), "%016llx", (unsigned long long)id.session);
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)id.epoch);
    if (store_kv_set(&kv, "session", session) < 0 || store_kv_set(&kv, "epoch", epoch) < 0 ||
        (r = store_write(x->dir, "ckpt.meta", &kv, false, err)) < 0)
        return r < 0 ? r : vmha_err_set(err, -ENOMEM, "out of memory");
    char ack[64];
    int n = snprintf(ack, sizeof(ack), "ACK %llu\n", (unsigned long long)id.epoch);
    dl = vmha_deadline_in(x->timeout_ms);
    if ((r = chan_write_all(ch, ack, (size_t)n, &dl)) < 0)
        cluster_log(LOG_WARNING, "checkpoint %llu committed, but the primary is gone: %s",
                    (unsigned long long)id.epoch, strerror(-r));
    x->st.session = id.session;
    x->st.epoch = id.epoch;
    x->st.bytes = bytes;
    x->st.committed_ms = remus_realtime_ms();
    x->st.epochs++;
    /* Committed whatever happens next: a journal not applied here is applied before a
     * restore reads the checkpoint. */
    struct vmha_err e = {0};
    if (remus_journal_apply(x->dir, &e) < 0)
        cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
    return 0;
}

int remus_listen(const char *address, struct vmha_err *err)
{
    char host[256];
    snprintf(host, sizeof(host), "%s", address);
    char *colon = strrchr(host, ':');
    if (!colon)
        return vmha_err_set(err, -EINVAL, "replication address %s has no :port", address);
    *colon = '\0';
    const char *port = colon + 1;
    if (host[0] == '[') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0)
        return vmha_err_set(err, -EINVAL, "cannot resolve replication address %s: %s", address,
                            gai_strerror(r));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return vmha_err_set(err, r, "cannot listen on %s: %s%s", address, strerror(-r),
                            r == -EADDRINUSE ? " (another replicated guest there? give each "
                                               "its own replication_port)" : "");
    }
    freeaddrinfo(ai);
    return fd;
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
    while (!remus_stop_requested) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        struct chan ch = {.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)};
        if (ch.fd < 0)
            continue;
        vmha_tune_socket(ch.fd, x->timeout_ms);
        struct vmha_err e = {0};
        /* A peer that does not complete its handshake quickly is not a primary: do not let it
         * hold up the next checkpoint for long. */
        struct vmha_deadline hs = vmha_deadline_in(x->timeout_ms < 2000 ? x->timeout_ms : 2000);
        int r = x->tls ? chan_tls(&ch, true, NULL, &hs, &e) : 0;
        if (r < 0 || receive_epoch(x, &ch, &e) < 0) {
            x->st.failures++;
            snprintf(x->st.error, sizeof(x->st.error), "%s", e.msg);
            cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
            char nak[300];
            int n = snprintf(nak, sizeof(nak), "NAK %s\n", e.msg);
            struct vmha_deadline nd = vmha_deadline_in(1000);
            if (r == 0) /* after a failed handshake there is no channel to answer on */
                chan_write_all(&ch, nak, (size_t)(n < (int)sizeof(nak) ? n : (int)sizeof(nak) - 1),
                               &nd);
        } else {
            x->st.error[0] = '\0';
            if (x->st.epochs == 1 || x->st.epochs % 100 == 0)
                cluster_log(LOG_INFO, "replica of %s holds checkpoint %llu (%llu epochs)",
                            x->guest, (unsigned long long)x->st.epoch,
                            (unsigned long long)x->st.epochs);
        }
        chan_close(&ch);
        snprintf(x->st.state, sizeof(x->st.state), "%s", x->st.epoch ? "holding" : "listening");
        remus_publish(x);
    }
    remus_advertise(x, false);
    cluster_log(LOG_NOTICE, "replica of %s stops (last checkpoint %llu kept)", x->guest,
                (unsigned long long)x->st.epoch);
    return 0;
}
