/* The primary's side of a replicated guest's disks: QEMU mirrors each writable disk, with
 * synchronous writes, into an NBD export of this process (nbd.c) on a unix socket in the
 * replicator's directory. Each write lands in the epoch's log (disk records, in the order
 * QEMU made them) before QEMU, and so the guest, sees it complete. A checkpoint, taken with
 * the guest paused (QEMU drains its I/O first), carries the log: exactly the writes the guest
 * saw complete since the last one. Only the guest's own QEMU may connect (its pid). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cluster.h"
#include "vmha/hv.h"

struct export_ctx {
    struct remus_mirror *m;
    uint32_t disk;
};

/* Appends one record; waits while the log is full, unless the guest is being paused (then
 * QEMU drains its writes and must not wait on us). */
static int log_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
    struct export_ctx *e = opaque;
    struct remus_mirror *m = e->m;
    size_t need = REMUS_DREC_LEN + (data ? len : 0);
    pthread_mutex_lock(&m->mu);
    while (m->len + need > m->limit && !m->pausing && !atomic_load(&m->stopping))
        pthread_cond_wait(&m->cv, &m->mu);
    if (atomic_load(&m->stopping)) {
        pthread_mutex_unlock(&m->mu);
        return -EIO;
    }
    if (m->cap - m->len < need) {
        size_t cap = m->cap ? m->cap : (1 << 20);
        while (cap - m->len < need)
            cap *= 2;
        unsigned char *b = realloc(m->log, cap);
        if (!b) {
            pthread_mutex_unlock(&m->mu);
            return -ENOMEM;
        }
        m->log = b;
        m->cap = cap;
    }
    unsigned char *p = m->log + m->len;
    remus_put_be32(p, e->disk);
    remus_put_be32(p + 4, data ? 0 : REMUS_DREC_ZERO);
    remus_put_be64(p + 8, off);
    remus_put_be64(p + 16, len);
    if (data)
        memcpy(p + REMUS_DREC_LEN, data, len);
    m->len += need;
    m->writes++;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static ssize_t sock_read(void *opaque, void *buf, size_t n)
{
    int fd = *(int *)opaque;
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

static int sock_write(void *opaque, const void *buf, size_t n)
{
    return vmha_write_all(*(int *)opaque, buf, n);
}

/* One disk's export: QEMU's connections, one at a time, for as long as the mirror lives. */
static void *listen_run(void *arg)
{
    struct remus_mirror_listener *l = arg;
    struct remus_mirror *m = l->m;
    struct export_ctx ctx = {.m = m, .disk = l->disk};
    while (!atomic_load(&m->stopping)) {
        struct pollfd p = {.fd = l->lfd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid != m->qemu_pid) {
            cluster_log(LOG_WARNING,
                        "guest %s: refused a connection to the mirror of %s from "
                        "pid %d (not the guest's QEMU)",
                        m->guest, m->disks->d[l->disk].target, (int)cr.pid);
            close(fd);
            continue;
        }
        struct remus_nbd_io io = {.read = sock_read, .write = sock_write, .opaque = &fd};
        struct remus_nbd_export e = {.name = m->disks->d[l->disk].target,
                                     .size = m->disks->d[l->disk].size,
                                     .write = log_write,
                                     .opaque = &ctx};
        int r = remus_nbd_serve(&io, &e);
        if (r < 0 && !atomic_load(&m->stopping))
            cluster_log(LOG_WARNING, "guest %s: the mirror of %s ended: %s", m->guest, e.name,
                        strerror(-r));
        close(fd);
    }
    return NULL;
}

static int socket_path(const struct remus_mirror *m, uint32_t disk, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/nbd-%s.sock", m->dir, m->disks->d[disk].target);
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int listen_on(const struct remus_mirror *m, uint32_t disk, struct vmha_err *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (socket_path(m, disk, a.sun_path, sizeof(a.sun_path)) < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "the mirror's socket path is too long in %s",
                            m->dir);
    unlink(a.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vmha_err_set(err, -errno, "socket: %s", strerror(errno));
    /* QEMU may run as another user (libvirt's qemu.conf): the pid check is the gate. */
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(a.sun_path, 0666) < 0 ||
        listen(fd, 4) < 0) {
        int r = -errno;
        close(fd);
        return vmha_err_set(err, r, "cannot listen on %s: %s", a.sun_path, strerror(-r));
    }
    return fd;
}

int remus_mirror_open(struct remus_mirror *m, struct remus_ctx *x, int qemu_pid,
                      struct vmha_err *err)
{
    *m = (struct remus_mirror){.guest = x->guest,
                               .dir = x->dir,
                               .disks = &x->disks,
                               .qemu_pid = qemu_pid,
                               .limit = REMUS_MIRROR_LOG_MAX};
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    for (uint32_t i = 0; i < x->disks.n; i++) {
        struct remus_mirror_listener *l = &m->listeners[i];
        *l = (struct remus_mirror_listener){.m = m, .disk = i, .lfd = listen_on(m, i, err)};
        if (l->lfd < 0)
            return l->lfd;
        if (pthread_create(&l->thread, NULL, listen_run, l) != 0)
            return vmha_err_set(err, -EAGAIN, "cannot start the mirror of %s",
                                x->disks.d[i].target);
        l->started = true;
    }
    return 0;
}

int remus_mirror_start(struct remus_mirror *m, struct hv *hv, struct vmha_err *err)
{
    /* Whatever copy a replicator before this one left (it was killed) ends too. */
    m->mirrored = true;
    remus_mirror_stop(m, hv);
    pthread_mutex_lock(&m->mu);
    m->len = 0;
    m->writes = 0;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (uint32_t i = 0; i < m->disks->n; i++) {
        char path[108];
        socket_path(m, i, path, sizeof(path));
        int r = hv_mirror_start(hv, m->guest, m->disks->d[i].target, path, err);
        if (r < 0)
            return r;
        m->mirrored = true;
    }
    return 0;
}

int remus_mirror_ready(struct remus_mirror *m, struct hv *hv, struct vmha_err *err)
{
    for (uint32_t i = 0; i < m->disks->n; i++) {
        int r = hv_mirror_ready(hv, m->guest, m->disks->d[i].target, err);
        if (r <= 0)
            return r;
    }
    return 1;
}

void remus_mirror_stop(struct remus_mirror *m, struct hv *hv)
{
    if (!m->mirrored)
        return;
    for (uint32_t i = 0; i < m->disks->n; i++) {
        struct vmha_err e = {0};
        if (hv_mirror_stop(hv, m->guest, m->disks->d[i].target, &e) < 0)
            cluster_log(LOG_WARNING, "guest %s: %s", m->guest, e.msg);
    }
    m->mirrored = false;
}

void remus_mirror_pausing(struct remus_mirror *m, bool on)
{
    pthread_mutex_lock(&m->mu);
    m->pausing = on;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

size_t remus_mirror_take(struct remus_mirror *m, unsigned char **ret)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->len;
    *ret = m->log;
    m->log = NULL;
    m->len = m->cap = 0;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t remus_mirror_pending(struct remus_mirror *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->len;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void remus_mirror_close(struct remus_mirror *m, struct hv *hv)
{
    remus_mirror_stop(m, hv);
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->stopping, true);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (uint32_t i = 0; i < m->disks->n; i++) {
        struct remus_mirror_listener *l = &m->listeners[i];
        if (l->started)
            pthread_join(l->thread, NULL);
        if (l->lfd >= 0) {
            close(l->lfd);
            char path[108];
            if (socket_path(m, i, path, sizeof(path)) == 0)
                unlink(path);
        }
    }
    free(m->log);
    m->log = NULL;
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
}
