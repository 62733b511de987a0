/* A plain guest's lifecycle, which the actions of both kinds of guest (ocf_actions.c, plain;
 * ocf_remus.c, replicated) are made of: its configuration read and checked, the connection to
 * its hypervisor, its state, start, stop, live migration. Nothing here calls an action. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

/* Guest definitions are small; anything bigger is not a domain XML. */
#define CONFIG_MAX_BYTES (4u << 20)

void ocf_guest_clear(struct guest *g)
{
    hv_close(g->hv);
    free(g->config_text);
    hv_guest_config_clear(&g->cfg);
}

enum ocf_rc ocf_fail(struct vmha_err *why, int rc, const char *msg)
{
    vmha_err_set(why, -EINVAL, "%s", msg);
    return rc;
}

static enum ocf_rc check_file(const char *what, const char *path, struct vmha_err *why)
{
    if (!path || access(path, R_OK) == 0)
        return OCF_SUCCESS;
    vmha_err_set(why, -errno, "the guest's %s %s is not readable on this node: %s", what, path,
                 strerror(errno));
    return OCF_ERR_INSTALLED;
}

/* The guest's name becomes a file name (state_dir/<name>, the run directory's files, the
 * libxl backend's definitions): one that could name another directory, or none, is a
 * configuration error wherever the guest runs. */
static enum ocf_rc check_name(const char *name, const char *source, struct vmha_err *why)
{
    if (store_name_ok(name))
        return OCF_SUCCESS;
    bool printable = name[0] && strlen(name) <= 64;
    for (const char *c = name; *c && printable; c++)
        printable = *c >= 0x20 && *c < 0x7f;
    vmha_err_set(why, -EINVAL,
                 "the guest name %s%s%sin %s cannot be used: vmha names files after "
                 "it; use only letters, digits and _ . : - (at most 200 characters)",
                 printable ? "'" : "", printable ? name : "", printable ? "' " : "", source);
    return OCF_ERR_CONFIGURED;
}

/* Reads and checks config. With strict false, an unreadable config is tolerated when the
 * name parameter still identifies the guest (a probe must find a running guest). */
enum ocf_rc ocf_guest_load(const struct ocf_params *p, struct guest *g, bool strict,
                           struct vmha_err *why)
{
    struct vmha_err e = {0};
    int r = hv_backend_for_uri(p->hypervisor, &g->backend, &e);
    if (r < 0)
        return ocf_fail(why, OCF_ERR_INSTALLED, e.msg);
    r = vmha_read_file(p->config, CONFIG_MAX_BYTES, &g->config_text, &e);
    if (r < 0) {
        if (!strict && p->name[0]) {
            if ((r = check_name(p->name, "the name parameter", why)) != OCF_SUCCESS)
                return r;
            cluster_log(LOG_WARNING, "%s; identifying the guest by name=%s", e.msg, p->name);
            g->name = p->name;
            return OCF_SUCCESS;
        }
        if (!strict) {
            /* Not knowing which guest to look for is not "not running": never say 7 or 5. */
            vmha_err_set(why, r, "config: %s, and no name parameter to find the guest by", e.msg);
            return OCF_ERR_GENERIC;
        }
        vmha_err_set(why, r, "config: %s", e.msg);
        return ocf_rc_for_config_error(r);
    }
    r = hv_config_parse(g->backend, g->config_text, &g->cfg, &e);
    if (r < 0) {
        vmha_err_set(why, r, "config: %s", e.msg);
        return OCF_ERR_CONFIGURED;
    }
    if (p->name[0] && strcmp(p->name, g->cfg.name) != 0) {
        vmha_err_set(why, -EINVAL, "name=%s does not match the name '%s' in %s", p->name,
                     g->cfg.name, p->config);
        return OCF_ERR_CONFIGURED;
    }
    if ((r = check_name(g->cfg.name, p->config, why)) != OCF_SUCCESS)
        return r;
    g->name = g->cfg.name;
    if (!strict)
        return OCF_SUCCESS;
    if ((r = check_file("kernel", g->cfg.kernel, why)) != OCF_SUCCESS ||
        (r = check_file("initrd", g->cfg.initrd, why)) != OCF_SUCCESS ||
        (r = check_file("firmware", g->cfg.loader, why)) != OCF_SUCCESS)
        return r;
    return OCF_SUCCESS;
}

enum ocf_rc ocf_guest_connect(const struct ocf_params *p, struct guest *g,
                              const struct vmha_deadline *dl, struct vmha_err *why)
{
    struct vmha_err e = {0};
    ocf_step("connecting to the hypervisor at %s", p->hypervisor);
    int r = hv_open(p->hypervisor, dl, &g->hv, &e);
    const char *daemon = hv_backend_daemon(g->backend);
    char hint[64] = "";
    if (r == -ETIMEDOUT) {
        if (daemon)
            snprintf(hint, sizeof(hint), " (is %s hung?)", daemon);
        vmha_err_set(why, r, "the hypervisor at %s does not answer%s: %s", p->hypervisor, hint,
                     e.msg);
        return OCF_ERR_GENERIC;
    }
    if (r < 0) {
        if (daemon)
            snprintf(hint, sizeof(hint), " (is %s running?)", daemon);
        vmha_err_set(why, r, "cannot reach the hypervisor at %s%s: %s", p->hypervisor, hint, e.msg);
        return OCF_ERR_GENERIC;
    }
    return OCF_SUCCESS;
}

/* The guest's state here; ABSENT when this host does not know it. */
enum ocf_rc ocf_guest_state(struct guest *g, enum hv_state *ret, struct vmha_err *why)
{
    struct hv_guest_info info;
    struct vmha_err e = {0};
    ocf_step("reading the state of guest %s", g->name);
    int r = hv_lookup(g->hv, g->name, &info, &e);
    if (r == -ENOENT) {
        *ret = HV_STATE_ABSENT;
        return OCF_SUCCESS;
    }
    if (r < 0) {
        vmha_err_set(why, r, "cannot read the state of guest %s: %s", g->name, e.msg);
        return OCF_ERR_GENERIC;
    }
    *ret = info.state;
    return OCF_SUCCESS;
}

/* What every action that touches the guest starts with: its config, a connection, and where
 * the guest is now. */
enum ocf_rc ocf_guest_open(const struct ocf_params *p, struct guest *g, bool strict,
                           const struct vmha_deadline *dl, enum hv_state *state,
                           struct vmha_err *why)
{
    int rc = ocf_guest_load(p, g, strict, why);
    if (rc == OCF_SUCCESS)
        rc = ocf_guest_connect(p, g, dl, why);
    if (rc == OCF_SUCCESS)
        rc = ocf_guest_state(g, state, why);
    return rc;
}

/* Polls until the guest's state satisfies want, or dl passes. */
enum ocf_rc ocf_guest_wait(struct guest *g, bool (*want)(enum hv_state),
                           const struct vmha_deadline *dl, enum hv_state *last,
                           struct vmha_err *why)
{
    for (;;) {
        int rc = ocf_guest_state(g, last, why);
        if (rc != OCF_SUCCESS || want(*last))
            return rc;
        if (!vmha_deadline_sleep(dl, 200))
            return OCF_ERR_GENERIC;
    }
}

bool ocf_is_running(enum hv_state s)
{
    return s == HV_STATE_RUNNING;
}

bool ocf_is_off(enum hv_state s)
{
    return s == HV_STATE_ABSENT || s == HV_STATE_SHUTOFF;
}

/* A state store others can write would let them steer what root writes on every node. */
enum ocf_rc ocf_check_state_dir(const struct ocf_params *p, struct vmha_err *why)
{
    struct vmha_err e = {0};
    if (p->state_dir[0] && store_check_state_dir(p->state_dir, &e) < 0)
        return ocf_fail(why, OCF_ERR_CONFIGURED, e.msg);
    return OCF_SUCCESS;
}

enum ocf_rc ocf_guest_start(const struct ocf_params *p, struct guest *g, enum hv_state s,
                            const struct vmha_deadline *dl, struct vmha_err *why)
{
    struct vmha_err e = {0};
    int r = 0;
    if (s == HV_STATE_PAUSED) {
        ocf_step("resuming guest %s", g->name);
        r = hv_resume(g->hv, g->name, &e);
    } else {
        if (s == HV_STATE_CRASHED) {
            ocf_step("clearing crashed guest %s", g->name);
            hv_destroy(g->hv, g->name, &e);
        }
        ocf_step("defining guest %s", g->name);
        r = hv_define(g->hv, g->config_text, &e);
        if (r == -EINVAL) {
            vmha_err_set(why, r, "%s", e.msg);
            return OCF_ERR_CONFIGURED;
        }
        char warning[1200];
        if (r == 0) {
            int rc = ocf_nvram_restore(p, g->hv, g->name, why, warning, sizeof(warning));
            if (rc != OCF_SUCCESS)
                return rc;
            /* Pacemaker keeps the exit reason of the operation: say it even on success. */
            if (warning[0])
                fprintf(stderr, "ocf-exit-reason:%s\n", warning);
            bool installing = false;
            rc = ocf_install_start(p, g->hv, g->name, g->config_text, &installing, why);
            if (rc != OCF_SUCCESS)
                return rc;
            if (!installing) {
                ocf_step("starting guest %s", g->name);
                r = hv_start(g->hv, g->name, NULL, &e);
            }
        }
    }
    if (r < 0) {
        vmha_err_set(why, r, "%s", e.msg);
        return OCF_ERR_GENERIC;
    }
    ocf_step("waiting for guest %s to run", g->name);
    enum hv_state now;
    int rc = ocf_guest_wait(g, ocf_is_running, dl, &now, why);
    if (rc == OCF_SUCCESS && !ocf_is_running(now)) {
        vmha_err_set(why, -EIO, "guest %s is %s instead of running", g->name,
                     hv_state_to_string(now));
        rc = OCF_ERR_GENERIC;
    }
    return rc;
}

/* How long stop may wait for a graceful shutdown: what the parameter and the operation's
 * timeout allow, less the time destroy may need. */
static struct vmha_deadline shutdown_deadline(const struct ocf_params *p,
                                              const struct vmha_deadline *dl)
{
    uint64_t left = vmha_deadline_left_ms(dl);
    uint64_t reserve = left / 4;
    reserve = reserve < 2000 ? 2000 : reserve > 15000 ? 15000 : reserve;
    struct vmha_deadline d = vmha_deadline_before(dl, reserve);
    if (p->shutdown_timeout_ms)
        d = vmha_deadline_min(d, vmha_deadline_in(p->shutdown_timeout_ms));
    return d;
}

enum ocf_rc ocf_guest_stop(const struct ocf_params *p, struct guest *g, enum hv_state s,
                           const struct vmha_deadline *dl, struct vmha_err *why)
{
    struct vmha_err e = {0};
    enum hv_state now = s;
    int rc = OCF_SUCCESS;
    if (!p->force_stop && s != HV_STATE_PAUSED && s != HV_STATE_CRASHED) {
        struct vmha_deadline soft = shutdown_deadline(p, dl);
        ocf_step("asking guest %s to shut down", g->name);
        cluster_log(LOG_INFO, "asking guest %s to shut down (up to %llu ms)", g->name,
                    (unsigned long long)vmha_deadline_left_ms(&soft));
        if (hv_shutdown(g->hv, g->name, p->shutdown_mode, &e) < 0)
            cluster_log(LOG_WARNING, "graceful shutdown refused: %s", e.msg);
        else if ((rc = ocf_guest_wait(g, ocf_is_off, &soft, &now, why)) != OCF_SUCCESS &&
                 vmha_deadline_passed(&soft) == false)
            return rc;
    }
    if (ocf_is_off(now))
        return OCF_SUCCESS;
    cluster_log(LOG_WARNING, "destroying guest %s (%s)", g->name,
                p->force_stop ? "force_stop is set" : "it did not shut down in time");
    ocf_step("destroying guest %s", g->name);
    if (hv_destroy(g->hv, g->name, &e) < 0) {
        vmha_err_set(why, e.code, "cannot destroy guest %s: %s", g->name, e.msg);
        return OCF_ERR_GENERIC;
    }
    ocf_step("waiting for guest %s to be gone", g->name);
    if ((rc = ocf_guest_wait(g, ocf_is_off, dl, &now, why)) != OCF_SUCCESS)
        return rc;
    return OCF_SUCCESS;
}

struct migrate_watch {
    const char *name, *target;
    struct vmha_deadline cancel_at;
    uint64_t last_log;
};

static bool on_progress(const struct hv_progress *pr, void *opaque)
{
    struct migrate_watch *w = opaque;
    if (vmha_deadline_passed(&w->cancel_at)) {
        cluster_log(LOG_ERR, "migration of %s to %s runs out of time: cancelling", w->name,
                    w->target);
        return false;
    }
    if (pr->elapsed_ms - w->last_log >= 2000 && pr->data_total) {
        w->last_log = pr->elapsed_ms;
        cluster_log(LOG_INFO, "migrating %s to %s: %llu%% (%llu of %llu MiB), %llu s", w->name,
                    w->target, (unsigned long long)(pr->data_processed * 100 / pr->data_total),
                    (unsigned long long)(pr->data_processed >> 20),
                    (unsigned long long)(pr->data_total >> 20),
                    (unsigned long long)(pr->elapsed_ms / 1000));
    }
    return true;
}

enum ocf_rc ocf_guest_migrate(const struct ocf_params *p, struct guest *g, const char *target,
                              const struct vmha_deadline *dl, struct vmha_err *why)
{
    if (p->state_dir[0] && p->migration_policy) {
        if (!g->cfg.name)
            return ocf_fail(why, OCF_ERR_GENERIC,
                            "the migration policy cannot be checked without "
                            "the guest's config: not migrating");
        if (ocf_paths_check(p, &g->cfg, target, dl, why) < 0)
            return OCF_ERR_GENERIC; /* the guest keeps running here */
    }
    _cleanup_free_ char *dest = NULL, *data = NULL;
    if (ocf_migration_dest_uri(p, target, &dest, why) < 0)
        return OCF_ERR_CONFIGURED;
    if (p->migrateuri[0] && ocf_expand_template(p->migrateuri, target, &data) < 0)
        return ocf_fail(why, OCF_ERR_GENERIC, "out of memory");
    /* Cancel early enough that the abort itself completes within the timeout. */
    uint64_t reserve = vmha_deadline_left_ms(dl) / 10;
    struct migrate_watch w = {.name = g->name,
                              .target = target,
                              .cancel_at =
                                  vmha_deadline_before(dl, reserve < 2000 ? 2000 : reserve)};
    /* Each progress poll is a query to QEMU's main loop: once a second is plenty. */
    struct hv_migrate_params mp = {.dest_uri = dest,
                                   .data_uri = data,
                                   .bandwidth_mib = p->migration_speed,
                                   .max_downtime_ms = p->migration_downtime,
                                   .progress = on_progress,
                                   .opaque = &w,
                                   .poll_ms = 1000,
                                   .deadline = w.cancel_at};
    ocf_nvram_capture(p, g->hv, g->name, "migrate", dl);
    cluster_log(LOG_NOTICE, "migrating guest %s to %s (%s)", g->name, target, dest);
    ocf_step("migrating guest %s to %s", g->name, dest);
    struct vmha_err e = {0};
    if (hv_migrate(g->hv, g->name, &mp, &e) < 0) {
        enum hv_state after = HV_STATE_INVALID;
        ocf_guest_state(g, &after, &(struct vmha_err){0});
        vmha_err_set(why, e.code, "live migration of %s to %s failed, the guest is %s here: %s",
                     g->name, target, hv_state_to_string(after), e.msg);
        return OCF_ERR_GENERIC;
    }
    cluster_log(LOG_NOTICE, "guest %s migrated to %s", g->name, target);
    return OCF_SUCCESS;
}

/* validate-all's checks for any guest: the state store, the configuration and its files,
 * the boot artifacts, the migration target, what NVRAM can be kept. g is loaded. */
enum ocf_rc ocf_guest_validate(const struct ocf_params *p, struct guest *g, struct vmha_err *why)
{
    int rc = ocf_check_state_dir(p, why);
    if (rc == OCF_SUCCESS)
        rc = ocf_guest_load(p, g, true, why);
    if (rc == OCF_SUCCESS)
        rc = ocf_boot_check(p, &g->cfg, false, why);
    if (rc != OCF_SUCCESS)
        return rc;
    /* Found now rather than halfway through the first migration. */
    _cleanup_free_ char *dest = NULL;
    struct vmha_err e = {0};
    if (ocf_migration_dest_uri(p, "node", &dest, &e) < 0 ||
        hv_migrate_target_check(g->backend, dest, &e) < 0)
        return ocf_fail(why, OCF_ERR_CONFIGURED, e.msg);
    /* libxenlight keeps no UEFI variables (Xen 4.17): say so rather than lose them. */
    if (g->cfg.loader && g->cfg.virt_type && strcmp(g->cfg.virt_type, "xen") == 0 &&
        p->state_dir[0]) {
        vmha_err_set(why, -EOPNOTSUPP,
                     "guest %s boots UEFI firmware on Xen, whose "
                     "libxenlight keeps no UEFI variables: its boot order and boot entries "
                     "cannot be kept in the state store and are lost at every start",
                     g->cfg.name);
        return OCF_ERR_CONFIGURED;
    }
    return OCF_SUCCESS;
}
