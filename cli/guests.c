/* The guests the cluster manages with ocf:vmha:guest, as the commands see them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_private.h"
#include "vmha/cleanup.h"
#include "vmha/hv.h"
#include "vmha/state.h"

/* What store_name_ok takes, for the operator. */
#define NAME_RULE "it may hold only letters, digits and _ . : - (at most 200 characters)"

int cli_guest_config(const struct cli_guest *g, struct hv_guest_config *ret, struct vmha_err *err)
{
    const char *config = cluster_rsc_param(g->rsc, "config");
    const char *uri = cluster_rsc_param(g->rsc, "hypervisor");
    const struct hv_backend *b;
    _cleanup_free_ char *text = NULL;
    int r;
    if (!config || !config[0])
        return vmha_err_set(err, -EINVAL, "guest %s has no config parameter", g->name);
    if ((r = hv_backend_for_uri(uri ? uri : "qemu:///system", &b, err)) < 0 ||
        (r = vmha_read_file(config, 4u << 20, &text, err)) < 0)
        return r;
    return hv_config_parse(b, text, ret, err);
}

void cli_guest_load(const struct cluster_rsc *rsc, struct cli_guest *g)
{
    memset(g, 0, sizeof(*g));
    g->rsc = rsc;
    const char *config = cluster_rsc_param(rsc, "config");
    const char *name = cluster_rsc_param(rsc, "name");
    const char *uri = cluster_rsc_param(rsc, "hypervisor");
    const char *state_dir = cluster_rsc_param(rsc, "state_dir");
    g->state_dir = state_dir && state_dir[0] ? state_dir : NULL;
    const char *on = cluster_rsc_param(rsc, "migration_policy");
    bool enforced = true;
    g->policy = g->state_dir && !(on && vmha_parse_bool(on, &enforced) == 0 && !enforced);
    snprintf(g->name, sizeof(g->name), "%s", name && name[0] ? name : rsc->id);
    /* The name becomes state_dir/<name>: the store refuses one that could lead elsewhere. */
    if (!store_name_ok(g->name))
        snprintf(g->problem, sizeof(g->problem), "the guest name cannot be used: %s", NAME_RULE);
    const struct hv_backend *b;
    _cleanup_free_ char *text = NULL;
    struct vmha_err e = {0};
    if (g->problem[0])
        return;
    if (!config || hv_backend_for_uri(uri ? uri : "qemu:///system", &b, &e) < 0 ||
        vmha_read_file(config, 4u << 20, &text, &e) < 0) {
        snprintf(g->problem, sizeof(g->problem), "config unreadable here: %s",
                 config ? e.msg : "no config parameter");
        return;
    }
    struct hv_guest_config cfg = {0};
    if (hv_config_parse(b, text, &cfg, &e) < 0) {
        snprintf(g->problem, sizeof(g->problem), "config: %s", e.msg);
        return;
    }
    if (!(name && name[0]))
        snprintf(g->name, sizeof(g->name), "%s", cfg.name);
    if (!store_name_ok(g->name))
        snprintf(g->problem, sizeof(g->problem), "the guest name in %s cannot be used: %s", config,
                 NAME_RULE);
    snprintf(g->config_machine, sizeof(g->config_machine), "%s", cfg.machine ? cfg.machine : "");
    snprintf(g->family, sizeof(g->family), "%s", hv_family_of(&cfg));
    hv_guest_config_clear(&cfg);
}

int cli_guest_find(const struct cluster_view *v, const char *arg, struct cli_guest *g)
{
    for (size_t i = 0; i < v->n_rsc; i++) {
        if (strcmp(v->rsc[i].agent, CLI_GUEST_AGENT) != 0)
            continue;
        cli_guest_load(&v->rsc[i], g);
        if (strcmp(arg, g->name) == 0 || strcmp(arg, v->rsc[i].id) == 0)
            return 0;
    }
    memset(g, 0, sizeof(*g));
    return -ENOENT;
}

int cli_read_cluster(const char *cmd, const struct cli_opts *o, struct cluster_view *v)
{
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
    struct vmha_err e = {0};
    if (cluster_read(&dl, v, &e) < 0) {
        fprintf(stderr, "vmha %s: %s (is the cluster running on this host?)\n", cmd, e.msg);
        return -1;
    }
    return 0;
}

int cli_open_guest(const char *cmd, const char *arg, const struct cli_opts *o,
                   struct cluster_view *v, struct cli_guest *g)
{
    if (cli_read_cluster(cmd, o, v) < 0)
        return -1;
    if (cli_guest_find(v, arg, g) < 0) {
        fprintf(stderr, "vmha %s: no %s resource named %s\n", cmd, CLI_GUEST_AGENT, arg);
        return -1;
    }
    return 0;
}
