/* The replicator's engine for a hypervisor's own Remus (HV_FEAT_NATIVE_REMUS: Xen's, through
 * libxenlight), run under the cluster's rules. The hypervisor does all of a replication
 * inside one call on each side (hv_remus_send / hv_remus_receive); vmha owns the socket
 * around it:
 *
 *   send     connects to the backup the cluster advertises (REMUS_ATTR_REPLICA), proves it
 *            is the cluster's primary (chan.c), says "vmha-remus SESSION", and replicates
 *            until the stream breaks; libxenlight's stream runs inside the authenticated
 *            channel (pump.c). libxenlight then
 *            leaves the guest suspended: every replica is marked stale in the cluster BEFORE
 *            the guest resumes, unprotected, and the next connection is a new session (a full
 *            sync). SIGTERM ends the stream the same way.
 *   receive  listens on the replication address and takes one primary at a time, once it
 *            has proven itself, and only a stream of the configured guest (name, UUID). When a
 *            stream ends, its last complete checkpoint stays as the paused domain
 *            NAME--replica until a newer session supersedes it. SIGUSR1 (a promotion) ends the
 *            stream and exits keeping the replica; SIGTERM (a stop) discards it.
 *
 * libxenlight reports nothing per checkpoint, so a watcher thread counts them on the socket
 * with TCP's own counters (bytes the backup acknowledged, bytes received): once the initial
 * live copy is over, a burst followed by a quiet gap (the guest running through its
 * interval) is one epoch, once as many bytes as the guest's memory have crossed (the live
 * copy sends all of it at least once, without a pause; the greeting tells the backup how
 * many). The primary also takes the guest seen suspended as the live copy's end (a
 * suspension is brief: Xen 4.20 under emulation was seldom caught in one). The count feeds the
 * status and the lag only. Whether a replica may run never rests on it: libxenlight keeps
 * only complete checkpoints, and a replica its primary ran past carries a stale mark. */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/hv.h"

#define XEN_HELLO "vmha-remus "

struct watch {
    struct remus_ctx *x;
    int fd;
    bool sender;
    uint64_t floor; /* bytes of the initial copy (the guest's memory): no epoch before */
    struct hv *xl;  /* the primary's: to see the guest suspended (NULL on the backup) */
    uint32_t domid; /* the guest's, once the watcher found it */
    bool live_copy_over;
    atomic_bool done;
    pthread_t thread;
};

static bool signalled(void)
{
    return remus_stop_requested || remus_demote_requested;
}

static void *watch_run(void *arg)
{
    struct watch *w = arg;
    struct remus_ctx *x = w->x;
    uint64_t quiet = x->interval_ms / 2 > 50 ? x->interval_ms / 2 : 50;
    uint64_t last = 0, burst_from = 0, changed_at = 0;
    bool burst = false;
    while (!atomic_load(&w->done)) {
        if (signalled()) {
            shutdown(w->fd, SHUT_RDWR); /* libxenlight sees the end of its stream */
            break;
        }
        if (w->xl && !w->live_copy_over) {
            w->live_copy_over = hv_remus_suspended(w->xl, x->guest, &w->domid) == 1;
        }
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        uint64_t now = vmha_now_ms();
        if (getsockopt(w->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
            uint64_t b = w->sender ? ti.tcpi_bytes_acked : ti.tcpi_bytes_received;
            if (b != last) {
                if (!burst)
                    burst_from = last;
                burst = true;
                last = b;
                changed_at = now;
            } else if (burst && now - changed_at >= quiet &&
                       (last >= w->floor || (w->xl && w->live_copy_over))) {
                burst = false;
                x->st.epoch++;
                x->st.epochs++;
                x->st.bytes = last - burst_from;
                x->st.committed_ms = remus_realtime_ms() - (now - changed_at);
                if (w->sender && strcmp(x->st.state, "protected") != 0) {
                    cluster_log(LOG_NOTICE,
                                "guest %s is protected by its replica on %s "
                                "(first checkpoint, %llu bytes)",
                                x->guest, x->st.peer, (unsigned long long)x->st.bytes);
                    snprintf(x->st.state, sizeof(x->st.state), "protected");
                }
                x->st.error[0] = '\0';
                remus_publish(x);
            }
        }
        usleep(20 * 1000);
    }
    return NULL;
}

static int watch_start(struct watch *w, struct remus_ctx *x, int fd, bool sender, uint64_t floor,
                       struct hv *xl)
{
    *w = (struct watch){
        .x = x, .fd = fd, .sender = sender, .floor = floor, .xl = xl, .domid = UINT32_MAX};
    return -pthread_create(&w->thread, NULL, watch_run, w);
}

static void watch_stop(struct watch *w)
{
    atomic_store(&w->done, true);
    pthread_join(w->thread, NULL);
}

/* While a stream runs (libxenlight holds the thread), the door stays watched: a stranger is
 * refused at once, not left waiting until the stream ends; a second primary is turned away. */
struct keeper {
    struct remus_ctx *x;
    struct remus_door *door;
    atomic_bool done;
    pthread_t thread;
};

static void *keep_run(void *arg)
{
    struct keeper *k = arg;
    while (!atomic_load(&k->done)) {
        struct chan ch;
        if (remus_door_wait(k->x, k->door, 200, &ch) != 1)
            continue;
        cluster_log(LOG_WARNING, "replica of %s: a second primary while one streams: closed",
                    k->x->guest);
        chan_close(&ch);
    }
    return NULL;
}

/* Sleeps ms unless a signal asks the replicator to stop. */
static void nap(uint64_t ms)
{
    for (uint64_t t = 0; t < ms && !signalled(); t += 50)
        usleep(50 * 1000);
}

static void set_state(struct remus_ctx *x, const char *state, const char *error)
{
    if (strcmp(x->st.state, state) == 0 && strcmp(x->st.error, error) == 0)
        return;
    snprintf(x->st.state, sizeof(x->st.state), "%s", state);
    snprintf(x->st.error, sizeof(x->st.error), "%s", error);
    remus_publish(x);
}

static int open_hv(struct remus_ctx *x, struct hv **h, struct vmha_err *err)
{
    struct vmha_deadline dl = vmha_deadline_in(30000);
    return hv_open(x->uri, &dl, h, err);
}

/* After a stream ended: the backup's replica is stale before the guest takes one more step.
 * Without the cluster's word the guest stays suspended (a promoted replica could otherwise
 * undo what it does next); on a stop request the agent deals with it. */
static bool unprotect(struct remus_ctx *x, struct hv *c, const char *peer)
{
    for (;;) {
        struct vmha_deadline dl = vmha_deadline_in(10000);
        struct vmha_err e = {0};
        /* Every checkpoint of this session: the guest ran on past the newest. */
        if (remus_mark_stale(x, peer, UINT64_MAX, &dl, &e) == 0)
            break;
        cluster_log(LOG_ERR, "guest %s: %s; it stays suspended", x->guest, e.msg);
        if (remus_stop_requested)
            return false;
        nap(1000);
    }
    struct vmha_err e = {0};
    if (hv_resume(c, x->guest, &e) < 0 && e.code != -ENOENT) {
        cluster_log(LOG_ERR, "guest %s: cannot resume it after replication: %s", x->guest, e.msg);
        return false;
    }
    return true;
}

/* A connection to the backup at addr, authenticated; -errno with err set. */
static int connect_backup(struct remus_ctx *x, const char *addr, struct chan *ch,
                          struct vmha_err *err)
{
    struct vmha_deadline dl = vmha_deadline_in(10000);
    *ch = (struct chan){.fd = remus_connect(addr, &dl, err)};
    if (ch->fd < 0)
        return ch->fd;
    vmha_tune_socket(ch->fd, x->timeout_ms);
    int r = chan_client(ch, x, addr, &dl, err);
    if (r < 0)
        chan_close(ch);
    return r;
}

/* One session on a connected backup: a fresh session number, the greeting, then the
 * hypervisor's Remus through the pump until the stream ends (with the guest suspended). */
static int native_session(struct remus_ctx *x, struct hv *c, struct hv *watch_hv, struct chan *ch,
                          const char *peer, const char *addr, struct vmha_err *err)
{
    int fd = ch->fd;
    if (getrandom(&x->st.session, sizeof(x->st.session), 0) != sizeof(x->st.session))
        x->st.session = vmha_now_ms() ^ ((uint64_t)getpid() << 32);
    x->st.epoch = 0;
    snprintf(x->st.peer, sizeof(x->st.peer), "%s", peer);
    /* Published even when the state stays "syncing": the status names the peer now. */
    snprintf(x->st.state, sizeof(x->st.state), "syncing");
    x->st.error[0] = '\0';
    remus_publish(x);
    cluster_log(LOG_NOTICE, "guest %s: replicating to %s (%s) every %llu ms", x->guest, peer, addr,
                (unsigned long long)x->interval_ms);
    /* Here, not once protected: while libxenlight's save helper runs, libxl reaps every
     * child of the process, attrd_updater's too. The backup's replica of an earlier session
     * stays stale by its session either way. */
    remus_renew_mark(x, peer);
    struct hv_guest_info gi = {0};
    if (hv_lookup(c, x->guest, &gi, err) < 0)
        gi.memory_kib = 0;
    char hello[96];
    int n = snprintf(hello, sizeof(hello), XEN_HELLO "%016llx %llu\n",
                     (unsigned long long)x->st.session, (unsigned long long)gi.memory_kib);
    struct vmha_deadline dl = vmha_deadline_in(10000);
    struct watch w;
    struct remus_pump pump;
    int xfd = -1;
    int r = chan_write_all(ch, hello, (size_t)n, &dl);
    if (r < 0) {
        chan_close(ch);
        return vmha_err_set(err, r, "cannot start the stream: %s", strerror(-r));
    }
    if ((r = remus_pump_start(&pump, ch, x->timeout_ms, &xfd, err)) < 0)
        return r;
    /* The watcher counts epochs on the network socket (the pump's now). */
    if ((r = watch_start(&w, x, fd, true, gi.memory_kib * 1024, watch_hv)) == 0) {
        dl = vmha_deadline_in(30000);
        /* Returns only when the replication ends, with the guest suspended. */
        r = hv_remus_send(c, x->guest, xfd, x->interval_ms, &dl, err);
        watch_stop(&w);
    } else {
        vmha_err_set(err, r, "cannot watch the stream: %s", strerror(-r));
    }
    close(xfd);
    remus_pump_stop(&pump);
    return r;
}

int remus_native_send(struct remus_ctx *x)
{
    struct hv *c = NULL, *watch_hv = NULL;
    struct vmha_err err = {0};
    struct hv_guest_info gi = {0};
    /* The watcher has its own connection (it polls while the main one streams). */
    if (open_hv(x, &c, &err) < 0 || hv_lookup(c, x->guest, &gi, &err) < 0 ||
        open_hv(x, &watch_hv, &err) < 0) {
        hv_close(c);
        return remus_fail(x, &err);
    }
    set_state(x, "syncing", ""); /* ready: the agent's start returns */
    char peer[256], addr[300];
    while (!signalled()) {
        if (!remus_find_peer(x, peer, sizeof(peer), addr, sizeof(addr))) {
            set_state(x, "degraded", "no replica to send checkpoints to");
            nap(1000);
            continue;
        }
        struct chan ch;
        if (connect_backup(x, addr, &ch, &err) < 0) {
            x->st.failures++;
            set_state(x, "degraded", err.msg);
            nap(1000);
            continue;
        }
        native_session(x, c, watch_hv, &ch, peer, addr, &err);
        x->st.failures += !signalled();
        cluster_log(signalled() ? LOG_NOTICE : LOG_WARNING, "guest %s: replication to %s ended: %s",
                    x->guest, peer, signalled() ? "asked to stop" : err.msg);
        if (!unprotect(x, c, peer))
            break;
        set_state(x, "degraded", signalled() ? "replication stopped" : err.msg);
        nap(1000);
    }
    hv_close(watch_hv);
    hv_close(c);
    return 0;
}

/* The primary's greeting: its session and the guest's memory in KiB. */
static int read_hello(struct chan *ch, uint64_t *session, uint64_t *memory_kib)
{
    char line[64];
    struct vmha_deadline dl = vmha_deadline_in(10000);
    if (chan_read_line(ch, line, sizeof(line), &dl) < 0)
        return -EPROTO;
    line[strcspn(line, "\n")] = '\0';
    unsigned long long s, kib;
    char end;
    if (strncmp(line, XEN_HELLO, strlen(XEN_HELLO)) != 0 ||
        sscanf(line + strlen(XEN_HELLO), "%16llx %llu%c", &s, &kib, &end) != 2)
        return -EPROTO;
    *session = s;
    *memory_kib = kib;
    return 0;
}

/* The guest's own configuration, read once: the replica is made with it whatever the stream
 * says, and shared storage may be gone by the time a stream arrives. */
static int read_own_config(struct remus_ctx *x, struct hv *c, char **config, struct vmha_err *err)
{
    struct hv_guest_config own = {0};
    int r = vmha_read_file(x->config, 1 << 20, config, err);
    if (r == 0 && (r = hv_config_parse(hv_backend_of(c), *config, &own, err)) == 0 &&
        strcmp(own.name, x->guest) != 0)
        r = vmha_err_set(err, -EINVAL, "%s is the config of guest %s, not of %s", x->config,
                         own.name, x->guest);
    hv_guest_config_clear(&own);
    return r;
}

/* One primary's stream, through the pump, until it ends: its last complete checkpoint is then
 * the replica (named in replica). */
static int native_receive_one(struct remus_ctx *x, struct hv *c, struct remus_door *door,
                              struct chan *ch, uint64_t memory_kib, const char *config,
                              char *replica, size_t rsize, struct vmha_err *err)
{
    int fd = ch->fd, xfd = -1;
    struct watch w;
    struct remus_pump pump;
    struct keeper k = {.x = x, .door = door};
    int r = remus_pump_start(&pump, ch, x->timeout_ms, &xfd, err);
    if (r < 0)
        return r;
    if ((r = watch_start(&w, x, fd, false, memory_kib * 1024, NULL)) == 0) {
        bool kept = pthread_create(&k.thread, NULL, keep_run, &k) == 0;
        struct vmha_deadline dl = vmha_deadline_in(30000);
        r = hv_remus_receive(c, xfd, config, &dl, replica, rsize, err);
        atomic_store(&k.done, true);
        if (kept)
            pthread_join(k.thread, NULL);
        watch_stop(&w);
    } else {
        vmha_err_set(err, r, "cannot watch the stream: %s", strerror(-r));
    }
    close(xfd);
    remus_pump_stop(&pump);
    return r;
}

int remus_native_receive(struct remus_ctx *x)
{
    struct hv *c = NULL;
    struct vmha_err err = {0};
    _cleanup_free_ char *config = NULL;
    struct remus_door door;
    if (open_hv(x, &c, &err) < 0 || read_own_config(x, c, &config, &err) < 0 ||
        remus_door_open(x, &door, &err) < 0) {
        hv_close(c);
        return remus_fail(x, &err);
    }
    set_state(x, "listening", "");
    remus_advertise(x, true);
    while (!signalled()) {
        struct chan ch;
        if (remus_door_wait(x, &door, 500, &ch) != 1)
            continue;
        uint64_t session = 0, memory_kib = 0;
        if (read_hello(&ch, &session, &memory_kib) < 0) {
            chan_close(&ch);
            cluster_log(LOG_WARNING, "replica of %s: a primary that did not say hello", x->guest);
            continue;
        }
        x->st.session = session;
        x->st.epoch = 0;
        set_state(x, "receiving", "");
        char replica[300];
        if (native_receive_one(x, c, &door, &ch, memory_kib, config, replica, sizeof(replica),
                               &err) == 0) {
            if (x->st.epoch == 0)
                x->st.epoch = 1; /* libxenlight kept a complete checkpoint */
            set_state(x, "holding", "");
            cluster_log(LOG_NOTICE, "replica of %s: the stream ended; %s holds checkpoint %llu",
                        x->guest, replica, (unsigned long long)x->st.epoch);
        } else {
            x->st.epoch = 0;
            x->st.failures++;
            set_state(x, "listening", err.msg);
            cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, err.msg);
        }
    }
    remus_door_close(&door);
    remus_advertise(x, false);
    if (remus_stop_requested) {
        struct vmha_err e = {0};
        if (hv_replica_discard(c, x->guest, &e) < 0)
            cluster_log(LOG_WARNING, "replica of %s: %s", x->guest, e.msg);
        x->st.epoch = 0;
        set_state(x, "listening", "stopped");
    }
    cluster_log(LOG_NOTICE, "replica of %s stops (%s)", x->guest,
                remus_stop_requested ? "discarded" : "kept for a promotion");
    hv_close(c);
    return 0;
}
