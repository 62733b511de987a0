/* vmha paths: the hosts × guests matrix of the migration policy, with the reason for every
 * refusal. It computes each verdict itself (the policy is pure) from what the nodes publish
 * and the floors in the state store, and flags where a node still publishes another. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/hv.h"
#include "vmha/migrate.h"

#define GUEST_AGENT CLI_GUEST_AGENT

struct row {
    struct cli_guest g;
    bool have_record;
    struct mig_record rec;
    char problem[600]; /* why the guest has no verdicts at all */
};

static void load_row(struct row *r, const struct cluster_rsc *rsc)
{
    cli_guest_load(rsc, &r->g);
    snprintf(r->problem, sizeof(r->problem), "%s", r->g.problem);
    if (r->problem[0])
        return;
    if (!r->g.state_dir) {
        snprintf(r->problem, sizeof(r->problem), "no policy: state_dir is not set");
        return;
    }
    if (!r->g.policy) {
        snprintf(r->problem, sizeof(r->problem), "no policy: migration_policy=false");
        return;
    }
    struct vmha_err e = {0};
    int rc = mig_record_read(r->g.state_dir, r->g.name, &r->rec, &e);
    if (rc < 0 && rc != -ENOENT) {
        snprintf(r->problem, sizeof(r->problem), "state store: %s", e.msg);
        return;
    }
    r->have_record = rc == 0;
    /* Today's parameters and config count, the floor comes from the store. */
    const char *w = cluster_rsc_param(r->g.rsc, "migration_window");
    uint64_t window = 1;
    if (w && vmha_parse_uint(w, 1000, &window) < 0) {
        snprintf(r->problem, sizeof(r->problem), "migration_window=%s is not a number", w);
        return;
    }
    r->rec.window = (unsigned)window;
    memcpy(r->rec.family, r->g.family, sizeof(r->rec.family));
    memcpy(r->rec.config_machine, r->g.config_machine, sizeof(r->rec.config_machine));
}

static bool wanted(const struct row *r, int argc, char **argv)
{
    if (argc <= 1)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], r->g.name) == 0 || strcmp(argv[i], r->g.rsc->id) == 0)
            return true;
    return false;
}

static void verdict(const struct row *r, const struct cluster_node *n, bool *ok, char *why,
                    size_t size)
{
    if (!n->online) {
        *ok = false;
        snprintf(why, size, "%s is offline", n->name);
        return;
    }
    struct mig_need need;
    struct mig_host h;
    mig_record_need(&r->rec, &need);
    mig_host_of(n, &h);
    *ok = mig_allowed(&need, &h, why, size);
}

static const char *published(const struct row *r, const struct cluster_node *n)
{
    char attr[300];
    mig_path_attr(r->g.name, attr, sizeof(attr));
    return cluster_node_attr(n, attr, true);
}

static void print_json(const struct cluster_view *v, struct row *rows, size_t n)
{
    struct cli_json j = {.f = stdout};
    json_open(&j, NULL);
    json_open_list(&j, "nodes");
    for (size_t i = 0; i < v->n; i++) {
        const struct cluster_node *nd = &v->nodes[i];
        json_open(&j, NULL);
        json_string(&j, "name", nd->name);
        json_bool(&j, "online", nd->online);
        json_string(&j, "level", cluster_node_attr(nd, MIG_ATTR_LEVEL, true));
        json_bool(&j, "pinned", cluster_node_attr(nd, MIG_ATTR_PIN_LEVEL, false));
        json_string(&j, "runs", cluster_node_attr(nd, MIG_ATTR_DETECTED, true));
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_open_list(&j, "guests");
    for (size_t g = 0; g < n; g++) {
        struct row *r = &rows[g];
        char fl[48];
        mig_level_format(&r->rec.floor, fl, sizeof(fl));
        json_open(&j, NULL);
        json_string(&j, "guest", r->g.name);
        json_string(&j, "resource", r->g.rsc->id);
        if (r->problem[0]) {
            json_string(&j, "problem", r->problem);
            json_close(&j, '}');
            continue;
        }
        json_string(&j, "floor", fl[0] ? fl : NULL);
        json_string(&j, "machine", r->rec.machine);
        json_uint(&j, "window", r->rec.window);
        json_open_list(&j, "paths");
        for (size_t i = 0; i < v->n; i++) {
            bool ok;
            char why[400];
            verdict(r, &v->nodes[i], &ok, why, sizeof(why));
            json_open(&j, NULL);
            json_string(&j, "node", v->nodes[i].name);
            json_bool(&j, "allowed", ok);
            json_string(&j, "reason", why);
            json_string(&j, "published", published(r, &v->nodes[i]));
            json_close(&j, '}');
        }
        json_close(&j, ']');
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_close(&j, '}');
}

static void print_table(const struct cluster_view *v, struct row *rows, size_t n)
{
    printf("%-12s %-20s %-8s %s\n", "HOST", "LEVEL", "STATE", "RUNS");
    for (size_t i = 0; i < v->n; i++) {
        const struct cluster_node *nd = &v->nodes[i];
        const char *lv = cluster_node_attr(nd, MIG_ATTR_LEVEL, true);
        const char *pin = cluster_node_attr(nd, MIG_ATTR_PIN_LEVEL, false);
        char level[64];
        snprintf(level, sizeof(level), "%s%s", lv ? lv : "(not published)",
                 pin && lv ? " pinned" : "");
        const char *runs = cluster_node_attr(nd, MIG_ATTR_DETECTED, true);
        printf("%-12.12s %-20.20s %-8s %.37s\n", nd->name, level, nd->online ? "online" : "offline",
               runs ? runs : "-");
    }
    if (n == 0) {
        printf("\nno %s resources\n", GUEST_AGENT);
        return;
    }
    printf("\n%-12s %-12s %-15s", "GUEST", "FLOOR", "MACHINE");
    for (size_t i = 0; i < v->n; i++)
        printf(i + 1 < v->n ? " %-7.7s" : " %.7s", v->nodes[i].name);
    printf("\n");
    for (size_t g = 0; g < n; g++) {
        struct row *r = &rows[g];
        char fl[48];
        mig_level_format(&r->rec.floor, fl, sizeof(fl));
        printf("%-12.12s %-12.12s %-15.15s", r->g.name,
               r->problem[0] ? "-"
               : fl[0]       ? fl + strcspn(fl, " ") + 1
                             : "(never ran)",
               r->problem[0]       ? "-"
               : r->rec.machine[0] ? r->rec.machine
                                   : "-");
        for (size_t i = 0; i < v->n; i++) {
            bool ok = false;
            char why[400];
            if (!r->problem[0])
                verdict(r, &v->nodes[i], &ok, why, sizeof(why));
            printf(i + 1 < v->n ? " %-7s" : " %s", r->problem[0] ? "?" : ok ? "ok" : "no");
        }
        printf("\n");
    }
    for (size_t g = 0; g < n; g++) {
        struct row *r = &rows[g];
        if (r->problem[0]) {
            printf("\n%s: %s\n", r->g.name, r->problem);
            continue;
        }
        bool header = false;
        for (size_t i = 0; i < v->n; i++) {
            bool ok;
            char why[400];
            verdict(r, &v->nodes[i], &ok, why, sizeof(why));
            const char *pub = published(r, &v->nodes[i]);
            bool stale = v->nodes[i].online && (!pub || ok != (strcmp(pub, MIG_VERDICT_OK) == 0));
            if (ok && !stale)
                continue;
            if (!header)
                printf("\n%s:\n", r->g.name);
            header = true;
            if (!ok)
                printf("  not on %s: %s\n", v->nodes[i].name, why);
            if (stale)
                printf("  %s publishes %s%s%s (its ocf:vmha:node clone updates it at its next "
                       "monitor)\n",
                       v->nodes[i].name, pub ? "\"" : "no verdict", pub ? pub : "",
                       pub ? "\"" : "");
        }
    }
}

int cmd_paths(int argc, char **argv, const struct cli_opts *o)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_usage("paths", stdout, true);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    if (cli_read_cluster("paths", o, &v) < 0)
        return VMHA_EXIT_FAILED;
    _cleanup_free_ struct row *rows = calloc(v.n_rsc ? v.n_rsc : 1, sizeof(*rows));
    if (!rows) {
        fprintf(stderr, "vmha paths: out of memory\n");
        return VMHA_EXIT_FAILED;
    }
    size_t n = 0;
    for (size_t i = 0; i < v.n_rsc; i++) {
        if (strcmp(v.rsc[i].agent, GUEST_AGENT) != 0)
            continue;
        load_row(&rows[n], &v.rsc[i]);
        if (wanted(&rows[n], argc, argv))
            n++;
        else
            memset(&rows[n], 0, sizeof(rows[n]));
    }
    if (argc > 1 && n == 0) {
        fprintf(stderr, "vmha paths: no %s resource named %s\n", GUEST_AGENT, argv[1]);
        return VMHA_EXIT_FAILED;
    }
    if (o->json)
        print_json(&v, rows, n);
    else
        print_table(&v, rows, n);
    return VMHA_EXIT_OK;
}
