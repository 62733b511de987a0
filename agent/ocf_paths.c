/* The migration policy inside ocf:vmha:guest: the guest registers what it needs in the
 * state store, checks a host before it starts or lands there, and raises its floor and
 * re-publishes its verdicts once it runs somewhere new. All of it only with state_dir. */
#include <errno.h>
#include <string.h>

#include "agent_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/migrate.h"

/* What the guest's config and parameters ask for now. */
static void needs_of(const struct ocf_params *p, const struct hv_guest_config *cfg,
                     struct mig_record *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->family, sizeof(ret->family), "%s", hv_family_of(cfg));
    snprintf(ret->config_machine, sizeof(ret->config_machine), "%s",
             cfg->machine ? cfg->machine : "");
    ret->window = (unsigned)p->migration_window;
}

/* The record in the store with today's needs laid over it. */
static int current_need(const struct ocf_params *p, const struct hv_guest_config *cfg,
                        struct mig_record *rec, struct mig_need *need, struct vmha_err *err)
{
    int r = mig_record_read(p->state_dir, cfg->name, rec, err);
    if (r < 0 && r != -ENOENT)
        return r;
    struct mig_record now;
    needs_of(p, cfg, &now);
    memcpy(rec->family, now.family, sizeof(rec->family));
    memcpy(rec->config_machine, now.config_machine, sizeof(rec->config_machine));
    rec->window = now.window;
    mig_record_need(rec, need);
    return 0;
}

/* The policy is on with a state store, unless migration_policy=false. */
static bool policy_on(const struct ocf_params *p)
{
    return p->state_dir[0] && p->migration_policy;
}

int ocf_paths_check(const struct ocf_params *p, const struct hv_guest_config *cfg, const char *node,
                    const struct vmha_deadline *dl, struct vmha_err *why)
{
    if (!policy_on(p))
        return 0;
    struct mig_record rec;
    struct mig_need need;
    struct vmha_err e = {0};
    ocf_step("checking the migration policy for %s", node);
    if (current_need(p, cfg, &rec, &need, &e) < 0)
        return vmha_err_set(why, e.code, "cannot check the migration policy: %s", e.msg);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    if (cluster_read(dl, &v, &e) < 0)
        return vmha_err_set(why, e.code, "cannot check the migration policy: %s", e.msg);
    const struct cluster_node *n = cluster_node_find(&v, node);
    if (!n)
        return vmha_err_set(why, -EPERM, "migration policy: %s is not a node of this cluster",
                            node);
    struct mig_host h;
    mig_host_of(n, &h);
    char reason[400];
    if (!mig_allowed(&need, &h, reason, sizeof(reason)))
        return vmha_err_set(why, -EPERM, "migration policy: %s%s", reason,
                            h.level.family[0] ? ""
                                              : "; or set migration_policy=false to use "
                                                "state_dir for NVRAM only");
    return 0;
}

void ocf_paths_probe(const struct ocf_params *p, const struct hv_guest_config *cfg,
                     const struct vmha_deadline *dl)
{
    if (!policy_on(p) || !cfg->name)
        return;
    struct mig_record rec, now;
    struct vmha_err e = {0};
    int r = mig_record_read(p->state_dir, cfg->name, &rec, &e);
    needs_of(p, cfg, &now);
    if (r == -ENOENT)
        r = mig_record_register(p->state_dir, cfg->name, &now, dl, &e);
    if (r < 0) {
        cluster_log(LOG_WARNING, "migration policy: %s", e.msg);
        return;
    }
    if (!p->run_by_cluster)
        return;
    /* Say at once whether the guest may run here, rather than at the node clone's next
     * monitor: until some node says ok, the location rule keeps the guest stopped. */
    struct mig_need need;
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    if (current_need(p, cfg, &rec, &need, &e) < 0 || cluster_read(dl, &v, &e) < 0 ||
        mig_publish(&v, cluster_local_node(p->on_node), cfg->name, &need, dl, &e) < 0)
        cluster_log(LOG_WARNING, "migration policy: cannot publish this node's verdict: %s", e.msg);
}

void ocf_paths_landed(const struct ocf_params *p, struct hv *hv, const struct hv_guest_config *cfg,
                      const struct vmha_deadline *dl)
{
    if (!policy_on(p))
        return;
    const char *me = cluster_local_node(p->on_node);
    struct vmha_err e = {0};
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct mig_record needs, rec;
    needs_of(p, cfg, &needs);
    ocf_step("raising the migration floor of %s", cfg->name);
    if (cluster_read(dl, &v, &e) < 0)
        goto failed;
    const struct cluster_node *n = cluster_node_find(&v, me);
    struct mig_host h = {0};
    if (n)
        mig_host_of(n, &h);
    if (!h.level.family[0]) {
        vmha_err_set(&e, -ENOENT, "%s publishes no level (is ocf:vmha:node running there?)", me);
        goto failed;
    }
    struct hv_guest_config live = {0};
    if (hv_current_config(hv, cfg->name, &live, &e) < 0)
        cluster_log(LOG_WARNING, "cannot read the machine type guest %s runs with: %s", cfg->name,
                    e.msg);
    int r = mig_record_register(p->state_dir, cfg->name, &needs, dl, &e);
    if (r == 0)
        r = mig_record_raise(p->state_dir, cfg->name, &h.level, live.machine, me, dl, &rec, &e);
    hv_guest_config_clear(&live);
    if (r < 0)
        goto failed;
    char level[48];
    mig_level_format(&rec.floor, level, sizeof(level));
    cluster_log(LOG_INFO, "guest %s: migration floor %s, machine type %s", cfg->name, level,
                rec.machine[0] ? rec.machine : "(none)");
    struct mig_need need;
    mig_record_need(&rec, &need);
    ocf_step("publishing where guest %s may run", cfg->name);
    r = mig_publish(&v, NULL, cfg->name, &need, dl, &e);
    if (r < 0)
        goto failed;
    if (r > 0)
        cluster_log(LOG_NOTICE, "guest %s: verdicts changed on %d node(s)", cfg->name, r);
    return;
failed:
    /* The guest runs: failing the action now would only restart it. The node clones
     * correct the verdicts at their next monitor. */
    cluster_log(LOG_ERR, "guest %s runs, but its migration floor is not recorded: %s", cfg->name,
                e.msg);
}
