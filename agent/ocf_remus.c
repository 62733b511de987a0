/* A replicated (fault-tolerant) guest: the actions of the promotable clone.
 *
 *   unpromoted instance = a backup: vmha-replicator receive keeps the last checkpoint
 *   promoted instance   = the guest runs here, vmha-replicator send streams checkpoints
 *
 * promote resumes the guest from the backup's last checkpoint (or boots it when there is
 * none that may be used); demote hands the guest over with a final checkpoint (a planned
 * switchover) or, when nobody is to be promoted, shuts it down. Promotion scores: 100 where
 * the guest runs, 50 for a backup with a usable checkpoint, 5 for one without.
 *
 * Two engines (vmha-replicator picks one by the hypervisor): vmha's own for libvirt guests,
 * whose backup keeps the last checkpoint as a file, and Xen's Remus for hypervisor=libxl,
 * whose backup keeps it as the paused domain NAME--replica. Xen's has no final checkpoint, so
 * a planned switchover of a Xen guest is a live migration to its backup. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/nvram.h"
#include "vmha/remus.h"
#include "vmha/state.h"

struct ft {
    struct guest g;
    enum hv_state state;
    const char *me;
    char dir[PATH_MAX];
    bool native; /* the hypervisor's own Remus (Xen's, through libxenlight) */
};

static void ft_clear(struct ft *f)
{
    ocf_guest_clear(&f->g);
}

static bool is_active(enum hv_state s)
{
    return s != HV_STATE_ABSENT && s != HV_STATE_SHUTOFF;
}

static enum ocf_rc ocf_remus_validate(const struct ocf_params *p, const struct hv_guest_config *cfg,
                                      struct vmha_err *why);

/* The guest, its connection and state, this node and the replicator's directory. A strict
 * open (start, promote) also checks that the guest may be replicated at all. */
static enum ocf_rc ft_open(const struct ocf_params *p, struct ft *f, bool strict,
                           const struct vmha_deadline *dl, struct vmha_err *why)
{
    int rc = ocf_guest_open(p, &f->g, strict, dl, &f->state, why);
    if (rc == OCF_SUCCESS && strict)
        rc = ocf_remus_validate(p, &f->g.cfg, why);
    if (rc != OCF_SUCCESS)
        return rc;
    f->me = cluster_local_node(p->on_node);
    remus_dir(p->rundir, f->g.name, f->dir, sizeof(f->dir));
    f->native = hv_backend_can(f->g.backend, HV_FEAT_NATIVE_REMUS);
    return OCF_SUCCESS;
}

/* The promotion score Pacemaker reads: transient node attribute master-<resource>. */
static void set_score(const struct ocf_params *p, const char *me, const char *score,
                      const struct vmha_deadline *dl)
{
    if (!p->instance)
        return;
    char attr[300];
    snprintf(attr, sizeof(attr), "master-%s", p->instance);
    struct vmha_err e = {0};
    if (cluster_attr_update(me, attr, score, dl, &e) < 0)
        cluster_log(LOG_WARNING, "cannot set the promotion score: %s", e.msg);
}

static void set_attr(const char *me, const char *prefix, const char *guest, const char *value,
                     const struct vmha_deadline *dl)
{
    char attr[300];
    snprintf(attr, sizeof(attr), "%s%s", prefix, guest);
    struct vmha_err e = {0};
    if (cluster_attr_update(me, attr, value, dl, &e) < 0)
        cluster_log(LOG_WARNING, "cannot update %s: %s", attr, e.msg);
}

/* This node's own directory of the guest (VMHA_LOCALDIR, on this node's disk). */
static void local_dir(const struct ft *f, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", VMHA_LOCALDIR, f->g.name);
}

/* The mark there that this node's copy of the guest's disks is a backup's replica. */
static void replica_mark(const struct ft *f, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s/%s", VMHA_LOCALDIR, f->g.name, STATE_DISKS_REPLICA);
}

/* Whether this node may boot the guest from its own copy of the guest's disks: not when that
 * copy is a backup's replica (a local mark: it may be torn, or older than what clients saw)
 * nor when another node has since resumed the guest from a checkpoint (a permanent mark in
 * the CIB: this copy is older than the guest's). Only a checkpoint may then run here. */
static bool disks_bootable(const struct ft *f, const struct vmha_deadline *dl)
{
    if (!f->g.cfg.ndisks)
        return true;
    char path[PATH_MAX + 32];
    replica_mark(f, path, sizeof(path));
    if (access(path, F_OK) == 0)
        return false;
    struct cluster_view v = {0};
    struct vmha_err e = {0};
    if (cluster_read(dl, &v, &e) < 0)
        return false; /* unknown: not bootable */
    char attr[300];
    snprintf(attr, sizeof(attr), REMUS_ATTR_OUTDATED "%s", f->g.name);
    const struct cluster_node *n = cluster_node_find(&v, f->me);
    const char *mark = n ? cluster_node_attr(n, attr, false) : NULL;
    bool outdated = mark && mark[0];
    cluster_view_clear(&v);
    return !outdated;
}

/* The guest resumed here from the checkpoint these disks held: they are its own again, and
 * every other node's copy is older. Recorded in the cluster before the guest takes a step. */
static int disks_own(const struct ft *f, const struct vmha_deadline *dl, struct vmha_err *err)
{
    if (!f->g.cfg.ndisks)
        return 0;
    struct cluster_view v = {0};
    int r = cluster_read(dl, &v, err);
    if (r < 0)
        return r;
    char attr[300];
    snprintf(attr, sizeof(attr), REMUS_ATTR_OUTDATED "%s", f->g.name);
    for (size_t i = 0; i < v.n && r == 0; i++) {
        bool me = strcmp(v.nodes[i].name, f->me) == 0;
        const char *now = cluster_node_attr(&v.nodes[i], attr, false);
        if (me ? !(now && now[0]) : (now && now[0]))
            continue;
        r = cluster_attr_set_permanent(v.nodes[i].name, attr, me ? NULL : f->me, dl, err);
    }
    cluster_view_clear(&v);
    if (r < 0)
        return r;
    char path[PATH_MAX + 32];
    replica_mark(f, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        return vmha_err_set(err, -errno, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* A backup's promotion score: 50 with a checkpoint it may resume, 5 where it could only boot
 * the guest, none (never promoted) where its disks may not be booted from. */
static const char *backup_score(const struct ft *f, bool usable, const struct vmha_deadline *dl)
{
    return usable ? "50" : disks_bootable(f, dl) ? "5" : NULL;
}

static enum ocf_rc spawn(const struct ocf_params *p, struct ft *f, const char *mode,
                         const struct vmha_deadline *dl, struct vmha_err *why)
{
    char exe[PATH_MAX], interval[32], timeout[32], listen[512], memory[32];
    /* In a build tree it sits in ../remus/ of the agent; once installed, in libexecdir. */
    vmha_program_path("../remus/vmha-replicator", VMHA_LIBEXECDIR "/vmha-replicator", exe,
                      sizeof(exe));
    snprintf(interval, sizeof(interval), "%llu", (unsigned long long)p->checkpoint_interval_ms);
    snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)p->checkpoint_timeout_ms);
    _cleanup_free_ char *addr = NULL;
    if (ocf_expand_template(p->replication_address, f->me, &addr) < 0)
        return vmha_err_set(why, -ENOMEM, "out of memory"), OCF_ERR_GENERIC;
    snprintf(listen, sizeof(listen), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr,
             (unsigned)p->replication_port);
    snprintf(memory, sizeof(memory), "%llu", (unsigned long long)f->g.cfg.memory);
    char *argv[32 + 2 * REMUS_DISKS_MAX] = {
        exe,     (char *)mode,  "--guest",     (char *)f->g.name, "--dir",
        f->dir,  "--node",      (char *)f->me, "--timeout",       timeout,
        "--uri", p->hypervisor, "--interval",  interval};
    size_t n = 14;
    /* The disks as this node's configuration names them (validate checked them). */
    char disks[REMUS_DISKS_MAX][1100], local[PATH_MAX];
    for (size_t i = 0; i < f->g.cfg.ndisks && i < REMUS_DISKS_MAX; i++) {
        snprintf(disks[i], sizeof(disks[i]), "%s=%s", f->g.cfg.disks[i].target,
                 f->g.cfg.disks[i].source);
        argv[n++] = "--disk";
        argv[n++] = disks[i];
    }
    if (f->g.cfg.ndisks && strcmp(mode, "receive") == 0) {
        local_dir(f, local, sizeof(local));
        argv[n++] = "--local-dir";
        argv[n++] = local;
    }
    if (strcmp(mode, "receive") == 0) {
        argv[n++] = "--listen";
        argv[n++] = listen;
        if (f->g.cfg.memory) {
            argv[n++] = "--memory";
            argv[n++] = memory;
        }
        if (f->native) {
            argv[n++] = "--config";
            argv[n++] = p->config;
        }
        if (f->g.cfg.loader)
            argv[n++] = "--nvram";
    }
    if (p->replication_insecure) {
        argv[n++] = "--insecure";
    } else if (p->replication_tls) {
        argv[n++] = "--tls";
    } else {
        argv[n++] = "--key";
        argv[n++] = p->replication_key[0] ? p->replication_key : REMUS_KEY_DEFAULT;
    }
    ocf_step("starting the %s replicator of %s", mode, f->g.name);
    struct vmha_err e = {0};
    if (vmha_run(argv, dl, &e) < 0) {
        vmha_err_set(why, e.code, "cannot start replication of %s (%s): %s", f->g.name, mode,
                     e.msg);
        return OCF_ERR_GENERIC;
    }
    return OCF_SUCCESS;
}

/* Stops a replicator with sig (SIGTERM, or SIGUSR1 for the final checkpoint) and waits for
 * it to be gone, killing it at dl. */
static void reap(struct ft *f, const char *mode, int sig, const struct vmha_deadline *dl)
{
    int pid = 0;
    if (!remus_running(f->dir, mode, &pid) || pid <= 0)
        return;
    ocf_step("stopping the %s replicator of %s", mode, f->g.name);
    kill(pid, sig);
    while (remus_running(f->dir, mode, NULL)) {
        if (!vmha_deadline_sleep(dl, 50)) {
            cluster_log(LOG_ERR, "the %s replicator of %s did not stop: killing it", mode,
                        f->g.name);
            kill(pid, SIGKILL);
            struct vmha_deadline grace = vmha_deadline_in(2000);
            while (remus_running(f->dir, mode, NULL) && vmha_deadline_sleep(&grace, 50))
                ;
            return;
        }
    }
}

/* Removes what a backup kept here; the status too, unless a sender runs here (it is then
 * the sender's: a monitor without it would report the guest unprotected). */
static void wipe_replica(struct ft *f)
{
    static const char *const files[] = {
        "ckpt.save",       "ckpt.save.part", "ckpt.part",       "ckpt.meta",
        "ckpt.jrnl",       "ckpt.lock",      "dev.save",        "ram",
        "demote-shutdown", "demote-to",      REMUS_CONFIG_COPY, "status"};
    size_t n = sizeof(files) / sizeof(files[0]) - remus_running(f->dir, "send", NULL);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    /* What a write cut short by a crash left: .NAME.HOST.RANDOM.tmp (vmha_write_file). */
    DIR *d = opendir(f->dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' && len > 5 && strcmp(de->d_name + len - 4, ".tmp") == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
    struct vmha_err e = {0};
    if (f->native && hv_replica_discard(f->g.hv, f->g.name, &e) < 0)
        cluster_log(LOG_WARNING, "%s", e.msg);
}

/* What this node could resume: vmha's engine's checkpoint files, or what the hypervisor's own
 * Remus receiver says its replica holds. */
static int replica_of(struct ft *f, uint64_t *session, uint64_t *epoch)
{
    if (!f->native)
        return remus_checkpoint(f->dir, session, epoch);
    struct remus_status st = {0};
    struct vmha_err e = {0};
    if (remus_status_read(f->dir, &st, &e) < 0 || strcmp(st.role, "backup") != 0 || st.epoch == 0)
        return -ENOENT;
    *session = st.session;
    *epoch = st.epoch;
    return 0;
}

/* Whether this node's checkpoint may be promoted: it exists and no stale mark covers it.
 * reason says why not. */
static bool checkpoint_usable(struct ft *f, uint64_t *epoch, const struct vmha_deadline *dl,
                              char *reason, size_t rsize)
{
    uint64_t session = 0;
    if (replica_of(f, &session, epoch) < 0) {
        snprintf(reason, rsize, "this node holds no checkpoint of %s", f->g.name);
        return false;
    }
    struct cluster_view v = {0};
    struct vmha_err e = {0};
    if (cluster_read(dl, &v, &e) < 0) {
        snprintf(reason, rsize, "cannot read the cluster to check the checkpoint: %s", e.msg);
        return false;
    }
    char attr[300];
    snprintf(attr, sizeof(attr), REMUS_ATTR_STALE "%s", f->g.name);
    const struct cluster_node *n = cluster_node_find(&v, f->me);
    const char *mark = n ? cluster_node_attr(n, attr, true) : NULL;
    bool stale = remus_stale_covers(mark, session, *epoch);
    if (stale)
        snprintf(reason, rsize,
                 "checkpoint %llu is stale (the primary let output out after "
                 "it: %s)",
                 (unsigned long long)*epoch, mark);
    cluster_view_clear(&v);
    return !stale;
}

/* Writable disks the replicator can keep in step: raw files or block devices, each node's
 * own (not shareable, not on storage another node sees). */
static int replicated_disks_check(const struct ocf_params *p, const struct hv_guest_config *cfg,
                                  struct vmha_err *err)
{
    if (cfg->ndisks > REMUS_DISKS_MAX)
        return vmha_err_set(err, -E2BIG, "it has %zu writable disks, at most %d can be replicated",
                            cfg->ndisks, REMUS_DISKS_MAX);
    struct remus_disks ds = {0};
    for (size_t i = 0; i < cfg->ndisks; i++) {
        const struct hv_disk *d = &cfg->disks[i];
        if (!d->source || !d->target)
            return vmha_err_set(err, -EOPNOTSUPP,
                                "its disk %s is not a file or block device: only those can be "
                                "kept in step with its checkpoints",
                                d->target ? d->target : "(no target)");
        if (d->format && strcmp(d->format, "raw") != 0)
            return vmha_err_set(err, -EOPNOTSUPP,
                                "its disk %s is %s: the replica writes the disk's blocks as the "
                                "guest sees them, so it must be raw (<driver type='raw'/>)",
                                d->target, d->format);
        if (d->shareable)
            return vmha_err_set(err, -EOPNOTSUPP,
                                "its disk %s is <shareable/>: another guest could write it "
                                "behind the checkpoints' back",
                                d->target);
        char spec[1200];
        snprintf(spec, sizeof(spec), "%s=%s", d->target, d->source);
        if (remus_disks_add(&ds, spec, err) < 0)
            return -EINVAL;
    }
    /* Each node that looks at the guest marks its disks' directories: on storage two nodes
     * share, the second one finds the first one's mark. */
    const char *me = cluster_local_node(p->on_node);
    int r = remus_disks_shared(&ds, cfg->name, me, err);
    if (r == 0 && (r = remus_disks_mark(&ds, cfg->name, me, err)) < 0)
        r = vmha_err_set(err, r, "%s (the directory must be writable)", err->msg);
    return r;
}

static enum ocf_rc ocf_remus_validate(const struct ocf_params *p, const struct hv_guest_config *cfg,
                                      struct vmha_err *why)
{
    const char *no = NULL;
    const struct hv_backend *b;
    struct vmha_err e = {0};
    if (cfg->writable_disks &&
        (hv_backend_for_uri(p->hypervisor, &b, &e) < 0 || !hv_backend_can(b, HV_FEAT_DISK_MIRROR)))
        no = "it has a writable disk, and its backend cannot mirror disks for the replica "
             "(make the disks read-only or turn replicate off)";
    else if (cfg->writable_disks && replicated_disks_check(p, cfg, &e) < 0)
        no = e.msg;
    else if (cfg->loader && !cfg->nvram)
        no = "it boots UEFI firmware but its configuration names no variable store: add "
             "<nvram>PATH</nvram> to <os> (a file of each node's own), where a promotion puts the "
             "checkpoint's variables";
    else if (ocf_install_configured(p))
        no = "it has an install configuration: install it unreplicated first";
    else if (hv_backend_for_uri(p->hypervisor, &b, &e) < 0 ||
             hv_replication_check(b, cfg, p->replication_tls, &e) < 0)
        no = e.msg; /* what the backend's engine needs of the guest */
    if (no) {
        vmha_err_set(why, -EOPNOTSUPP, "guest %s cannot be replicated: %s", cfg->name, no);
        return OCF_ERR_CONFIGURED;
    }
    if (p->replication_insecure || p->replication_tls)
        return OCF_SUCCESS;
    /* The key the stream is authenticated with: every node must hold it. */
    const char *key = p->replication_key[0] ? p->replication_key : REMUS_KEY_DEFAULT;
    uint8_t *secret = NULL;
    size_t len = 0;
    if (vmha_secret_read("replication_key", key, &secret, &len, &e) < 0) {
        vmha_err_set(why, e.code,
                     "guest %s cannot be replicated: its stream must be "
                     "authenticated, and %s (set replication_key to a file every node holds)",
                     cfg->name, e.msg);
        return e.code == -ENOENT ? OCF_ERR_INSTALLED : OCF_ERR_CONFIGURED;
    }
    explicit_bzero(secret, len);
    free(secret);
    return OCF_SUCCESS;
}

/* Be a backup here: a fresh replica, listening. */
static enum ocf_rc become_backup(const struct ocf_params *p, struct ft *f,
                                 const struct vmha_deadline *dl, struct vmha_err *why)
{
    if (remus_running(f->dir, "receive", NULL))
        return OCF_SUCCESS;
    wipe_replica(f);
    set_attr(f->me, REMUS_ATTR_STALE, f->g.name, NULL, dl);
    int rc = spawn(p, f, "receive", dl, why);
    if (rc == OCF_SUCCESS && f->g.config_text && !f->native) {
        /* For vmha failover --no-cluster: shared storage may be gone with the cluster. */
        char path[PATH_MAX + 32];
        struct vmha_err e = {0};
        snprintf(path, sizeof(path), "%s/" REMUS_CONFIG_COPY, f->dir);
        if (vmha_write_file(path, f->g.config_text, strlen(f->g.config_text), false, &e) < 0)
            cluster_log(LOG_WARNING, "backup of %s: %s", f->g.name, e.msg);
    }
    if (rc == OCF_SUCCESS) {
        set_score(p, f->me, backup_score(f, false, dl), dl);
        cluster_log(LOG_NOTICE, "backup of guest %s ready on %s", f->g.name, f->me);
    }
    return rc;
}

static enum ocf_rc ocf_remus_start(const struct ocf_params *p, const struct vmha_deadline *dl,
                                   struct vmha_err *why)
{
    _cleanup_(ft_clear) struct ft f = {0};
    int rc = ft_open(p, &f, true, dl, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (is_active(f.state)) {
        /* A start makes a backup; a guest running here is a primary Pacemaker does not know. */
        vmha_err_set(why, -EEXIST,
                     "guest %s already runs on %s outside the cluster's "
                     "control: stop it there or clean up the resource",
                     f.g.name, f.me);
        return OCF_ERR_GENERIC;
    }
    return become_backup(p, &f, dl, why);
}

static enum ocf_rc ocf_remus_stop(const struct ocf_params *p, const struct vmha_deadline *dl,
                                  struct vmha_err *why)
{
    _cleanup_(ft_clear) struct ft f = {0};
    int rc = ft_open(p, &f, false, dl, why);
    if (rc != OCF_SUCCESS)
        return rc;
    struct vmha_deadline half = vmha_deadline_before(dl, vmha_deadline_left_ms(dl) / 2);
    reap(&f, "send", SIGTERM, &half);
    if (is_active(f.state)) {
        if ((rc = ocf_guest_stop(p, &f.g, f.state, dl, why)) != OCF_SUCCESS)
            return rc;
        struct vmha_err e = {0};
        if (hv_undefine(f.g.hv, f.g.name, &e) < 0 && e.code != -ENOENT)
            cluster_log(LOG_WARNING, "guest %s stopped, but %s", f.g.name, e.msg);
    }
    reap(&f, "receive", SIGTERM, dl);
    wipe_replica(&f);
    set_score(p, f.me, NULL, dl);
    set_attr(f.me, REMUS_ATTR_LAG, f.g.name, NULL, dl);
    cluster_log(LOG_NOTICE, "replicated guest %s is stopped on %s", f.g.name, f.me);
    return OCF_SUCCESS;
}

static enum ocf_rc ocf_remus_monitor(const struct ocf_params *p, const struct vmha_deadline *dl,
                                     struct vmha_err *why)
{
    _cleanup_(ft_clear) struct ft f = {0};
    int rc = ft_open(p, &f, false, dl, why);
    if (rc != OCF_SUCCESS)
        return rc;
    bool sender = remus_running(f.dir, "send", NULL);
    bool receiver = remus_running(f.dir, "receive", NULL);
    if (!is_active(f.state)) {
        if (sender) /* its guest is gone: nothing left to replicate */
            reap(&f, "send", SIGTERM, dl);
        if (!receiver)
            return OCF_NOT_RUNNING;
        if (p->interval_ms > 0) {
            char reason[600];
            uint64_t epoch = 0;
            bool usable = checkpoint_usable(&f, &epoch, dl, reason, sizeof(reason));
            set_score(p, f.me, backup_score(&f, usable, dl), dl);
        }
        return OCF_SUCCESS;
    }
    if (f.state == HV_STATE_CRASHED) {
        vmha_err_set(why, -EIO, "guest %s crashed", f.g.name);
        return OCF_FAILED_PROMOTED;
    }
    if (receiver) {
        /* A backup whose guest arrived by a Xen switchover (the demote on the old primary
         * migrated it here): it waits for its promotion, which the score asks for. */
        set_score(p, f.me, "100", dl);
        return OCF_SUCCESS;
    }
    if (!sender && p->interval_ms > 0) {
        /* The guest runs, its replication does not: start it again rather than fail a
         * guest that is fine. */
        cluster_log(LOG_WARNING, "replication of guest %s is not running: restarting it", f.g.name);
        if ((rc = spawn(p, &f, "send", dl, why)) != OCF_SUCCESS)
            return OCF_FAILED_PROMOTED;
    }
    if (p->interval_ms > 0 && f.state == HV_STATE_RUNNING) /* as a plain guest's monitor */
        ocf_nvram_watch(p, f.g.hv, f.g.name, dl);
    struct remus_status st = {0};
    struct vmha_err e = {0};
    if (remus_status_read(f.dir, &st, &e) < 0)
        st.state[0] = '\0';
    if (p->interval_ms > 0) {
        set_score(p, f.me, "100", dl);
        /* Whole seconds: a healthy guest's lag stays 0, so the attribute does not change
         * (each change makes Pacemaker recompute the cluster's state). */
        char lag[32] = "";
        if (st.committed_ms) {
            uint64_t now = remus_realtime_ms();
            snprintf(lag, sizeof(lag), "%llu",
                     (unsigned long long)(now > st.committed_ms ? now - st.committed_ms : 0) /
                         1000);
        }
        set_attr(f.me, REMUS_ATTR_LAG, f.g.name, lag[0] ? lag : NULL, dl);
    }
    if (strcmp(st.state, "protected") == 0)
        return OCF_RUNNING_PROMOTED;
    /* Running, but no backup holds a current checkpoint of it. */
    vmha_err_set(why, -ENOLINK, "guest %s runs unprotected (%s)%s%s", f.g.name,
                 st.state[0] ? st.state : "no replication status", st.error[0] ? ": " : "",
                 st.error);
    return OCF_DEGRADED_PROMOTED;
}

/* Promoted already (a repeated promote), or handed over to this node by a live migration (a
 * Xen switchover): no replica of it stays here; it replicates and runs. */
static enum ocf_rc promote_active(const struct ocf_params *p, struct ft *f,
                                  const struct vmha_deadline *dl, struct vmha_err *why)
{
    struct vmha_err e = {0};
    enum ocf_rc rc;
    if (remus_running(f->dir, "receive", NULL)) {
        reap(f, "receive", SIGTERM, dl);
        wipe_replica(f);
    }
    if (!remus_running(f->dir, "send", NULL) && (rc = spawn(p, f, "send", dl, why)) != OCF_SUCCESS)
        return rc;
    if (f->state == HV_STATE_PAUSED && hv_resume(f->g.hv, f->g.name, &e) < 0) {
        vmha_err_set(why, e.code, "cannot resume guest %s: %s", f->g.name, e.msg);
        return OCF_ERR_GENERIC;
    }
    set_score(p, f->me, "100", dl);
    return OCF_SUCCESS;
}

/* The hypervisor's own Remus left the last complete checkpoint as a paused replica: run it.
 * false (with reason) when it cannot. */
static bool promote_native(const struct ocf_params *p, struct ft *f, uint64_t epoch, uint64_t t0,
                           const struct vmha_deadline *dl, char *reason, size_t rsize)
{
    struct vmha_err e = {0};
    ocf_step("running guest %s from its replica (checkpoint %llu)", f->g.name,
             (unsigned long long)epoch);
    if (hv_replica_promote(f->g.hv, f->g.name, &e) < 0) {
        snprintf(reason, rsize, "its replica cannot run: %s", e.msg);
        return false;
    }
    cluster_log(LOG_NOTICE, "guest %s runs on %s from its replica (checkpoint %llu) after %llu ms",
                f->g.name, f->me, (unsigned long long)epoch,
                (unsigned long long)(vmha_now_ms() - t0));
    /* Nothing of its output is held (see validate): replication starts afresh, and the
     * monitor restarts it should this fail. */
    if (spawn(p, f, "send", dl, &e) != OCF_SUCCESS)
        cluster_log(LOG_ERR, "guest %s runs unprotected: %s", f->g.name, e.msg);
    return true;
}

/* A UEFI guest resumes with the variable store of its checkpoint (the firmware's state in
 * memory matches that one, not whatever this host's file holds): put where its <nvram> says. */
static int checkpoint_nvram(const struct ft *f, struct vmha_err *err)
{
    if (!f->g.cfg.loader)
        return 0;
    if (!f->g.cfg.nvram)
        return vmha_err_set(err, -EINVAL, "guest %s has no <nvram> path", f->g.name);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", f->dir, REMUS_NVRAM_FILE);
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = vmha_read_blob(path, REMUS_NVRAM_MAX, &buf, &len, err);
    if (r < 0)
        return vmha_err_set(err, r, "checkpoint without the guest's NVRAM: %s", err->msg);
    return nvram_write_file(f->g.cfg.nvram, buf, len, err);
}

/* vmha's engine: the guest restored from the checkpoint files this node holds, its output
 * held before it takes a step (its first checkpoint covers it), then resumed. */
static enum ocf_rc promote_checkpoint(const struct ocf_params *p, struct ft *f, uint64_t epoch,
                                      uint64_t t0, const struct vmha_deadline *dl,
                                      struct vmha_err *why)
{
    struct vmha_err e = {0};
    enum ocf_rc rc;
    ocf_step("restoring guest %s from checkpoint %llu", f->g.name, (unsigned long long)epoch);
    char dev[PATH_MAX + 32], ram[PATH_MAX + 32];
    int lock = remus_checkpoint_files(f->dir, dev, sizeof(dev), ram, sizeof(ram), &e);
    int r = lock < 0 ? lock : checkpoint_nvram(f, &e);
    if (r == 0)
        r = hv_ckpt_restore(f->g.hv, dev, ram, f->g.config_text, &e);
    if (lock >= 0)
        close(lock);
    if (r < 0) {
        vmha_err_set(why, e.code, "cannot resume guest %s from checkpoint %llu: %s", f->g.name,
                     (unsigned long long)epoch, e.msg);
        return OCF_ERR_GENERIC;
    }
    if ((r = disks_own(f, dl, &e)) < 0) {
        hv_destroy(f->g.hv, f->g.name, &(struct vmha_err){0});
        vmha_err_set(why, r,
                     "guest %s not resumed: cannot record that its disks here are "
                     "the guest's: %s",
                     f->g.name, e.msg);
        return OCF_ERR_GENERIC;
    }
    if ((rc = spawn(p, f, "send", dl, why)) != OCF_SUCCESS) {
        hv_destroy(f->g.hv, f->g.name, &e);
        return rc;
    }
    ocf_step("resuming guest %s", f->g.name);
    if (hv_resume(f->g.hv, f->g.name, &e) < 0) {
        vmha_err_set(why, e.code, "guest %s restored but cannot be resumed: %s", f->g.name, e.msg);
        return OCF_ERR_GENERIC;
    }
    /* How old the checkpoint is: the replica's commit time (CLOCK_REALTIME, which a cluster
     * keeps in step) to now, i.e. how long the guest stood still. */
    struct remus_status rs = {0};
    uint64_t now = remus_realtime_ms(), age = 0;
    if (remus_status_read(f->dir, &rs, &e) == 0 && rs.committed_ms && now > rs.committed_ms)
        age = now - rs.committed_ms;
    if (f->g.cfg.loader) /* the store's newest generation: the checkpoint's NVRAM */
        ocf_nvram_capture(p, f->g.hv, f->g.name, "resumed from a checkpoint", dl);
    cluster_log(LOG_NOTICE,
                "guest %s resumed on %s from checkpoint %llu in %llu ms "
                "(checkpoint taken %llu ms before)",
                f->g.name, f->me, (unsigned long long)epoch,
                (unsigned long long)(vmha_now_ms() - t0), (unsigned long long)age);
    return OCF_SUCCESS;
}

static enum ocf_rc ocf_remus_promote(const struct ocf_params *p, const struct vmha_deadline *dl,
                                     struct vmha_err *why)
{
    _cleanup_(ft_clear) struct ft f = {0};
    enum ocf_rc rc = ft_open(p, &f, true, dl, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (is_active(f.state))
        return promote_active(p, &f, dl, why);
    /* The replica stops taking checkpoints: what it holds now is what resumes. Xen's ends
     * its stream on SIGUSR1 and makes the last complete checkpoint a paused domain. */
    struct vmha_deadline quick = vmha_deadline_min(*dl, vmha_deadline_in(f.native ? 60000 : 10000));
    reap(&f, "receive", f.native ? SIGUSR1 : SIGTERM, &quick);
    char reason[600];
    uint64_t epoch = 0;
    uint64_t t0 = vmha_now_ms();
    bool usable = checkpoint_usable(&f, &epoch, dl, reason, sizeof(reason));
    if (usable && f.native)
        usable = promote_native(p, &f, epoch, t0, dl, reason, sizeof(reason));
    else if (usable && (rc = promote_checkpoint(p, &f, epoch, t0, dl, why)) != OCF_SUCCESS)
        return rc;
    if (!usable && !disks_bootable(&f, dl)) {
        /* Booting would run the guest on disks older than what its clients saw. */
        vmha_err_set(why, -ESTALE,
                     "guest %s cannot run on %s: %s, and this node's copy of its disks may be "
                     "older than what its clients saw (a replica, or the guest ran elsewhere "
                     "since): run it where its disks are its own, the node that ran it last",
                     f.g.name, f.me, reason);
        return OCF_ERR_GENERIC;
    }
    if (!usable) {
        cluster_log(LOG_WARNING, "booting guest %s on %s: %s", f.g.name, f.me, reason);
        struct vmha_err e = {0};
        if (disks_own(&f, dl, &e) < 0) {
            vmha_err_set(why, e.code,
                         "guest %s not booted: cannot record that its disks here are the "
                         "guest's: %s",
                         f.g.name, e.msg);
            return OCF_ERR_GENERIC;
        }
        wipe_replica(&f);
        if ((rc = ocf_guest_start(p, &f.g, f.state, dl, why)) != OCF_SUCCESS)
            return rc;
        if ((rc = spawn(p, &f, "send", dl, why)) != OCF_SUCCESS)
            return rc;
    }
    wipe_replica(&f);
    set_attr(f.me, REMUS_ATTR_STALE, f.g.name, NULL, dl);
    set_score(p, f.me, "100", dl);
    return OCF_SUCCESS;
}

/* A planned switchover of a Xen guest: its replication stops (the backup's replica is marked
 * stale and the guest runs on, unprotected), then it live-migrates to the node that is to be
 * promoted, where the promote finds it running. On failure it runs here, replicated again. */
static enum ocf_rc xen_hand_over(const struct ocf_params *p, struct ft *f, const char *to,
                                 const struct vmha_deadline *dl, struct vmha_err *why)
{
    struct vmha_deadline stop = vmha_deadline_before(dl, vmha_deadline_left_ms(dl) * 3 / 4);
    reap(f, "send", SIGTERM, &stop);
    enum hv_state now = HV_STATE_INVALID;
    struct vmha_err e = {0};
    ocf_guest_state(&f->g, &now, &e);
    int rc = OCF_ERR_GENERIC;
    if (now != HV_STATE_RUNNING)
        vmha_err_set(why, -EIO,
                     "guest %s is %s after its replication stopped (were its "
                     "replicas marked stale?): it stays here",
                     f->g.name, hv_state_to_string(now));
    else
        rc = ocf_guest_migrate(p, &f->g, to, dl, why);
    if (rc != OCF_SUCCESS) {
        spawn(p, f, "send", dl, &e);
        return rc;
    }
    cluster_log(LOG_NOTICE, "guest %s handed over to %s by live migration", f->g.name, to);
    return OCF_SUCCESS;
}

static enum ocf_rc ocf_remus_demote(const struct ocf_params *p, const struct vmha_deadline *dl,
                                    struct vmha_err *why)
{
    _cleanup_(ft_clear) struct ft f = {0};
    int rc = ft_open(p, &f, false, dl, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (!is_active(f.state))
        return become_backup(p, &f, dl, why);
    char flag[PATH_MAX + 32];
    snprintf(flag, sizeof(flag), "%s/demote-shutdown", f.dir);
    bool shutdown = access(flag, F_OK) == 0;
    struct vmha_err e = {0};
    struct remus_status st = {0};
    if (!shutdown && !remus_running(f.dir, "send", NULL) &&
        spawn(p, &f, "send", dl, &e) != OCF_SUCCESS) {
        /* Without its replicator the guest cannot be handed over: shut it down instead of
         * pretending a backup has it. */
        cluster_log(LOG_ERR, "guest %s cannot be handed over (%s): shutting it down", f.g.name,
                    e.msg);
        shutdown = true;
    }
    char to[256] = "";
    if (!shutdown && f.native) {
        /* Who is promoted (the pre-demote notification said), else the backup it streams to. */
        snprintf(flag, sizeof(flag), "%s/demote-to", f.dir);
        FILE *fl = fopen(flag, "re");
        if (!fl || !fgets(to, sizeof(to), fl) || !to[strspn(to, " \n")]) {
            remus_status_read(f.dir, &st, &e);
            snprintf(to, sizeof(to), "%s", st.peer);
        }
        if (fl)
            fclose(fl);
        to[strcspn(to, " \n")] = '\0';
        if (!to[0]) {
            cluster_log(LOG_ERR, "guest %s has no backup to hand it over to", f.g.name);
            shutdown = true;
        } else if ((rc = xen_hand_over(p, &f, to, dl, why)) != OCF_SUCCESS) {
            return rc;
        }
    } else if (!shutdown) {
        /* A planned switchover: one last checkpoint, after which the guest stays paused
         * here and the backup holds all of it. */
        ocf_step("handing guest %s over with a final checkpoint", f.g.name);
        struct vmha_deadline hand = vmha_deadline_before(dl, vmha_deadline_left_ms(dl) / 3);
        reap(&f, "send", SIGUSR1, &hand);
        remus_status_read(f.dir, &st, &e);
        if (strcmp(st.state, "demoted") != 0 && strcmp(st.state, "failed") != 0) {
            /* The guest still runs here with its output held: replicate on, fail. */
            spawn(p, &f, "send", dl, &e);
            vmha_err_set(why, -EIO,
                         "the final checkpoint of guest %s failed (%s): it keeps "
                         "running here",
                         f.g.name, st.error[0] ? st.error : "no answer");
            return OCF_ERR_GENERIC;
        }
        shutdown = strcmp(st.state, "failed") == 0; /* no replica to hand over to */
    }
    if (shutdown) {
        reap(&f, "send", SIGTERM, dl);
        cluster_log(LOG_NOTICE, "shutting guest %s down: no other node takes it over", f.g.name);
        enum hv_state now = f.state;
        ocf_guest_state(&f.g, &now, why);
        if (is_active(now) && (rc = ocf_guest_stop(p, &f.g, now, dl, why)) != OCF_SUCCESS)
            return rc;
        ocf_nvram_capture(p, f.g.hv, f.g.name, "stop", dl); /* what its next boot starts from */
    } else if (!f.native) { /* a Xen guest left by its live migration */
        ocf_step("removing guest %s here after its hand-over", f.g.name);
        if (hv_destroy(f.g.hv, f.g.name, &e) < 0 && e.code != -ENOENT) {
            vmha_err_set(why, e.code, "guest %s was handed over but cannot be removed here: %s",
                         f.g.name, e.msg);
            return OCF_ERR_GENERIC;
        }
        cluster_log(LOG_NOTICE, "guest %s handed over at checkpoint %llu", f.g.name,
                    (unsigned long long)st.epoch);
    }
    if (hv_undefine(f.g.hv, f.g.name, &e) < 0 && e.code != -ENOENT)
        cluster_log(LOG_WARNING, "cannot remove the definition of %s: %s", f.g.name, e.msg);
    set_attr(f.me, REMUS_ATTR_LAG, f.g.name, NULL, dl);
    return become_backup(p, &f, dl, why);
}

static enum ocf_rc ocf_remus_notify(const struct ocf_params *p, const struct vmha_deadline *dl,
                                    struct vmha_err *why)
{
    if (!p->notify_type || !p->notify_operation || strcmp(p->notify_type, "pre") != 0 ||
        strcmp(p->notify_operation, "demote") != 0)
        return OCF_SUCCESS;
    /* Before a demote: is anyone promoted in the same transition? If not (the clone stops,
     * or is being banned everywhere), the demote shuts the guest down instead of handing it
     * to a backup that is about to stop too. A Xen guest's demote migrates it to the node
     * promoted (demote-to). */
    char name[256], dir[PATH_MAX], flag[PATH_MAX + 32], to[PATH_MAX + 32];
    struct guest g = {0};
    if (ocf_guest_load(p, &g, false, why) != OCF_SUCCESS)
        return OCF_SUCCESS;
    snprintf(name, sizeof(name), "%s", g.name);
    ocf_guest_clear(&g);
    remus_dir(p->rundir, name, dir, sizeof(dir));
    snprintf(flag, sizeof(flag), "%s/demote-shutdown", dir);
    snprintf(to, sizeof(to), "%s/demote-to", dir);
    const char *promote = p->notify_promote_uname ? p->notify_promote_uname : "";
    promote += strspn(promote, " ");
    FILE *fl = fopen(promote[0] ? to : flag, "w");
    if (fl) {
        fprintf(fl, "%.*s\n", (int)strcspn(promote, " "), promote);
        fclose(fl);
    }
    unlink(promote[0] ? flag : to);
    (void)dl;
    return OCF_SUCCESS;
}

/* A replicated guest moves by a switchover (demote here, promote there), never by a live
 * migration. */
static enum ocf_rc act_no_migration(const struct ocf_params *p, const struct vmha_deadline *dl,
                                    struct vmha_err *why)
{
    (void)dl;
    if (!p->migrate_target_node && !p->migrate_source_node)
        return ocf_fail(why, OCF_ERR_ARGS,
                        "migrate_to needs the target node (OCF_RESKEY_CRM_meta_migrate_target)");
    return ocf_fail(why, OCF_ERR_CONFIGURED,
                    "a replicated guest does not live-migrate: it moves by a switchover "
                    "(demote here, promote there); set allow-migrate=false");
}

static enum ocf_rc act_validate(const struct ocf_params *p, const struct vmha_deadline *dl,
                                struct vmha_err *why)
{
    (void)dl;
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    enum ocf_rc rc = ocf_guest_validate(p, &g, why);
    return rc == OCF_SUCCESS ? ocf_remus_validate(p, &g.cfg, why) : rc;
}

/* The replicated guest's actions: a promotable clone whose promoted instance runs the guest
 * and whose unpromoted one keeps its replica. */
const struct ocf_action ocf_remus_actions[] = {
    {"start", 90000, ocf_remus_start, true},
    {"stop", 90000, ocf_remus_stop, true},
    {"monitor", 30000, ocf_remus_monitor, true},
    {"status", 30000, ocf_remus_monitor, true},
    {"migrate_to", 120000, act_no_migration, true},
    {"migrate_from", 60000, act_no_migration, true},
    {"validate-all", 10000, act_validate, true},
    {"reload-agent", 10000, act_validate, true},
    {"promote", 90000, ocf_remus_promote, true},
    {"demote", 90000, ocf_remus_demote, true},
    {"notify", 20000, ocf_remus_notify, true},
    {"meta-data", 5000, NULL, false},
    {NULL, 0, NULL, false},
};
