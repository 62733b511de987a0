/* The OCF actions of a plain ocf:vmha:guest, and the choice of action table. Each returns an
 * OCF code and, on failure, the one sentence that tells the operator what to fix. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

static enum ocf_rc act_validate(const struct ocf_params *p, const struct vmha_deadline *dl,
                                struct vmha_err *why)
{
    (void)dl;
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    return ocf_guest_validate(p, &g, why);
}

static enum ocf_rc act_monitor(const struct ocf_params *p, const struct vmha_deadline *dl,
                               struct vmha_err *why)
{
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    enum hv_state s;
    int rc = ocf_guest_open(p, &g, false, dl, &s, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (s == HV_STATE_SHUTOFF && p->interval_ms > 0 &&
        ocf_install_finished(p, g.hv, g.name, g.config_text, dl, &rc, why))
        return rc;
    rc = ocf_rc_for_state(s);
    if (rc == OCF_ERR_GENERIC)
        vmha_err_set(why, -EIO, "guest %s is %s", g.name, hv_state_to_string(s));
    if (p->interval_ms == 0 && g.cfg.name)
        ocf_paths_probe(p, &g.cfg, dl);
    if (rc == OCF_SUCCESS && s == HV_STATE_RUNNING)
        ocf_nvram_watch(p, g.hv, g.name, dl);
    return rc;
}

static enum ocf_rc act_start(const struct ocf_params *p, const struct vmha_deadline *dl,
                             struct vmha_err *why)
{
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    enum hv_state s;
    int rc = ocf_guest_open(p, &g, true, dl, &s, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (s == HV_STATE_SHUTDOWN) {
        /* Starting over a guest on its way down would race its power-off. */
        ocf_step("waiting for guest %s to finish shutting down", g.name);
        if ((rc = ocf_guest_wait(&g, ocf_is_off, dl, &s, why)) != OCF_SUCCESS)
            return rc;
    }
    if (s == HV_STATE_RUNNING) {
        cluster_log(LOG_INFO, "guest %s already runs here", g.name);
        return OCF_SUCCESS;
    }
    if ((rc = ocf_check_state_dir(p, why)) != OCF_SUCCESS ||
        (rc = ocf_boot_check(p, &g.cfg, true, why)) != OCF_SUCCESS)
        return rc;
    const char *me = cluster_local_node(p->on_node);
    int r = ocf_paths_check(p, &g.cfg, me, dl, why);
    if (r < 0) /* not here: Pacemaker then keeps the guest off this node */
        return r == -EPERM ? OCF_ERR_INSTALLED : OCF_ERR_GENERIC;
    cluster_log(LOG_INFO, "starting guest %s (%s)", g.name, hv_state_to_string(s));
    rc = ocf_guest_start(p, &g, s, dl, why);
    if (rc == OCF_SUCCESS) {
        cluster_log(LOG_NOTICE, "guest %s runs", g.name);
        ocf_paths_landed(p, g.hv, &g.cfg, dl);
    }
    return rc;
}

static enum ocf_rc act_stop(const struct ocf_params *p, const struct vmha_deadline *dl,
                            struct vmha_err *why)
{
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    enum hv_state s;
    int rc = ocf_guest_open(p, &g, false, dl, &s, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (!ocf_is_off(s) && (rc = ocf_guest_stop(p, &g, s, dl, why)) != OCF_SUCCESS) {
        if (!why->msg[0])
            vmha_err_set(why, -ETIMEDOUT, "guest %s did not stop in time", g.name);
        return rc;
    }
    if (s != HV_STATE_ABSENT) {
        ocf_nvram_capture(p, g.hv, g.name, "stop", dl);
        /* A definition left behind could be started by hand next to the real guest. */
        struct vmha_err e = {0};
        ocf_step("removing the definition of guest %s", g.name);
        if (hv_undefine(g.hv, g.name, &e) < 0 && e.code != -ENOENT)
            cluster_log(LOG_WARNING, "guest %s stopped, but %s", g.name, e.msg);
    }
    cluster_log(LOG_NOTICE, "guest %s is stopped", g.name);
    return OCF_SUCCESS;
}

static enum ocf_rc act_migrate_to(const struct ocf_params *p, const struct vmha_deadline *dl,
                                  struct vmha_err *why)
{
    if (!p->migrate_target_node)
        return ocf_fail(why, OCF_ERR_ARGS,
                        "migrate_to needs the target node (OCF_RESKEY_CRM_meta_migrate_target)");
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    enum hv_state s;
    int rc = ocf_guest_open(p, &g, false, dl, &s, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (s != HV_STATE_RUNNING && s != HV_STATE_PAUSED) {
        vmha_err_set(why, -ENOENT, "guest %s is %s here: nothing to migrate", g.name,
                     hv_state_to_string(s));
        return OCF_ERR_GENERIC;
    }
    return ocf_guest_migrate(p, &g, p->migrate_target_node, dl, why);
}

static enum ocf_rc act_migrate_from(const struct ocf_params *p, const struct vmha_deadline *dl,
                                    struct vmha_err *why)
{
    _cleanup_(ocf_guest_clear) struct guest g = {0};
    int rc = ocf_guest_load(p, &g, false, why);
    if (rc != OCF_SUCCESS || (rc = ocf_guest_connect(p, &g, dl, why)) != OCF_SUCCESS)
        return rc;
    enum hv_state s;
    ocf_step("waiting for guest %s to run here after migration", g.name);
    /* A peer-to-peer migration has finished before migrate_from runs: the guest is here or
     * it is not coming, so do not spend the whole timeout waiting for it. */
    struct vmha_deadline arrival = vmha_deadline_min(*dl, vmha_deadline_in(10000));
    rc = ocf_guest_wait(&g, ocf_is_running, &arrival, &s, why);
    if (rc == OCF_SUCCESS && ocf_is_running(s)) {
        ocf_nvram_capture_arrived(p, g.hv, g.name, dl);
        ocf_install_arrived(p, g.name);
        if (g.cfg.name)
            ocf_paths_landed(p, g.hv, &g.cfg, dl);
        else if (p->state_dir[0])
            cluster_log(LOG_ERR,
                        "guest %s arrived, but its config is unreadable: its "
                        "migration floor is not recorded",
                        g.name);
        return OCF_SUCCESS;
    }
    vmha_err_set(why, -ENOENT, "guest %s did not arrive: it is %s here", g.name,
                 hv_state_to_string(s));
    return OCF_ERR_GENERIC;
}

static enum ocf_rc act_reload_agent(const struct ocf_params *p, const struct vmha_deadline *dl,
                                    struct vmha_err *why)
{
    /* Every action reads its parameters afresh: accepting the new values is all there is. */
    return act_validate(p, dl, why);
}

/* Promotion only exists for a replicated guest (a promotable clone): for any other, promote
 * and demote are not implemented (3), which is how tools such as ocf-tester ask. */
static enum ocf_rc not_promotable(const struct ocf_params *p, const char *action,
                                  struct vmha_err *why)
{
    vmha_err_set(why, -EOPNOTSUPP,
                 "%s: guest is not replicated (set replicate=true and make "
                 "the resource a promotable clone)",
                 action);
    return OCF_ERR_UNIMPLEMENTED;
}

static enum ocf_rc act_promote(const struct ocf_params *p, const struct vmha_deadline *dl,
                               struct vmha_err *why)
{
    return not_promotable(p, "promote", why);
}

static enum ocf_rc act_demote(const struct ocf_params *p, const struct vmha_deadline *dl,
                              struct vmha_err *why)
{
    return not_promotable(p, "demote", why);
}

static enum ocf_rc act_notify(const struct ocf_params *p, const struct vmha_deadline *dl,
                              struct vmha_err *why)
{
    return OCF_SUCCESS;
}

/* The plain guest's actions; a replicated guest's are ocf_remus.c's. */
const struct ocf_action ocf_plain_actions[] = {
    {"start", 90000, act_start, true},
    {"stop", 90000, act_stop, true},
    {"monitor", 30000, act_monitor, true},
    {"status", 30000, act_monitor, true},
    {"migrate_to", 120000, act_migrate_to, true},
    {"migrate_from", 60000, act_migrate_from, true},
    {"validate-all", 10000, act_validate, true},
    {"reload-agent", 10000, act_reload_agent, true},
    {"promote", 90000, act_promote, true},
    {"demote", 90000, act_demote, true},
    {"notify", 20000, act_notify, true},
    {"meta-data", 5000, NULL, false},
    {NULL, 0, NULL, false},
};

static const struct ocf_action *find(const struct ocf_action *table, const char *name)
{
    for (const struct ocf_action *a = table; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const struct ocf_action *ocf_action_find(const char *name)
{
    return find(ocf_plain_actions, name);
}

const struct ocf_action *ocf_action_for(const struct ocf_action *a, const struct ocf_params *p)
{
    const struct ocf_action *r = p->replicate ? find(ocf_remus_actions, a->name) : NULL;
    return r ? r : a;
}
