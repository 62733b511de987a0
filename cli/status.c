/* vmha status: every guest under ocf:vmha:guest with where it runs (as crm_mon computes it),
 * its role, NVRAM generation, install state and migration floor; and the hosts. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/migrate.h"
#include "vmha/nvram.h"

struct gstatus {
    struct cli_guest g;
    const struct cluster_rsc_state *st[8]; /* the primitive, or a clone's instances */
    size_t n_st;
    char state[16], hosts[128], role[16];
    bool replicated;  /* replicate=true: a promotable clone */
    const char *auth; /* how its replication stream is authenticated: key, x509, none */
    char primary[64], backup[64];
    long lag_s;                   /* the primary's vmha-lag-<guest>, -1 when unknown */
    long nvram_gen, nvram_booted; /* -1: none */
    char install[16], floor[32];
};

/* "web1:1" belongs to "web1". */
static bool same_resource(const char *instance, const char *id)
{
    size_t n = strlen(id);
    return strncmp(instance, id, n) == 0 && (instance[n] == '\0' || instance[n] == ':');
}

static void fill(const struct cluster_view *v, struct gstatus *s)
{
    s->nvram_gen = s->nvram_booted = s->lag_s = -1;
    const char *rep = cluster_rsc_param(s->g.rsc, "replicate");
    bool b = false;
    s->replicated = rep && vmha_parse_bool(rep, &b) == 0 && b;
    bool insecure = false, tls = false;
    const char *v_insecure = cluster_rsc_param(s->g.rsc, "replication_insecure");
    const char *v_tls = cluster_rsc_param(s->g.rsc, "replication_tls");
    if (v_insecure)
        vmha_parse_bool(v_insecure, &insecure);
    if (v_tls)
        vmha_parse_bool(v_tls, &tls);
    s->auth = !s->replicated ? NULL : insecure ? "none" : tls ? "x509" : "key";
    snprintf(s->install, sizeof(s->install), "-");
    snprintf(s->floor, sizeof(s->floor), "-");
    bool failed = false, unmanaged = false, primary = false, backup = false;
    for (size_t i = 0; i < s->n_st; i++) {
        const struct cluster_rsc_state *st = s->st[i];
        failed |= st->failed;
        unmanaged |= !st->managed;
        bool p = strcmp(st->role, "Promoted") == 0 || strcmp(st->role, "Master") == 0;
        /* libpe_status calls a running unpromoted instance "Started". */
        bool u = !p && st->nodes && st->nodes[0] &&
                 (strcmp(st->role, "Unpromoted") == 0 || strcmp(st->role, "Slave") == 0 ||
                  (s->replicated && strcmp(st->role, "Started") == 0));
        primary |= p;
        backup |= u;
        if (st->nodes && st->nodes[0])
            snprintf(p   ? s->primary
                     : u ? s->backup
                         : s->primary,
                     sizeof(s->primary), "%s", st->nodes[0]);
        for (char **h = st->nodes; h && *h; h++) {
            size_t used = strlen(s->hosts);
            snprintf(s->hosts + used, sizeof(s->hosts) - used, "%s%s", used ? "," : "", *h);
        }
    }
    snprintf(s->state, sizeof(s->state), "%s",
             failed        ? "FAILED"
             : unmanaged   ? "unmanaged"
             : s->hosts[0] ? "running"
                           : "stopped");
    if (s->replicated && primary) {
        char attr[300];
        snprintf(attr, sizeof(attr), "vmha-lag-%s", s->g.name);
        const struct cluster_node *pn = cluster_node_find(v, s->primary);
        const char *lag = pn ? cluster_node_attr(pn, attr, true) : NULL;
        if (lag)
            s->lag_s = atol(lag);
        /* No backup, or one that has not taken a checkpoint for a while. */
        if (!failed && (!backup || s->lag_s > 5))
            snprintf(s->state, sizeof(s->state), "exposed");
    }
    snprintf(s->role, sizeof(s->role), "%s",
             primary && backup ? "prim+back"
             : primary         ? "primary"
             : backup          ? "backup"
                               : "-");
    if (!s->hosts[0])
        snprintf(s->hosts, sizeof(s->hosts), "-");
    if (!s->g.state_dir)
        return;
    struct vmha_err e = {0};
    _cleanup_free_ char *gdir = NULL;
    if (store_guest_dir(s->g.state_dir, s->g.name, &gdir, &e) < 0)
        return; /* vmha check says why */
    _cleanup_free_ struct nvram_gen *gens = NULL;
    size_t n = 0;
    unsigned long booted = 0;
    if (nvgen_list(gdir, &gens, &n, &e) == 0 && n)
        s->nvram_gen = (long)gens[n - 1].num;
    if (nvgen_booted(gdir, &booted, &e) == 0 && booted)
        s->nvram_booted = (long)booted;
    struct install_record ir;
    if (install_read(gdir, &ir, &e) == 0 && ir.state != INSTALL_NOT_STARTED)
        snprintf(s->install, sizeof(s->install), "%s", install_state_name(ir.state));
    struct mig_record rec;
    if (mig_record_read(s->g.state_dir, s->g.name, &rec, &e) == 0 && rec.floor.family[0])
        mig_level_format(&rec.floor, s->floor, sizeof(s->floor));
}

/* A count that is -1 when not known. */
static void json_count(struct cli_json *j, const char *key, long v)
{
    if (v >= 0)
        json_uint(j, key, (unsigned long long)v);
    else
        json_null(j, key);
}

static void print_json(const struct cluster_view *v, const struct gstatus *s, size_t n)
{
    struct cli_json j = {.f = stdout};
    json_open(&j, NULL);
    json_open_list(&j, "guests");
    for (size_t i = 0; i < n; i++) {
        json_open(&j, NULL);
        json_string(&j, "guest", s[i].g.name);
        json_string(&j, "resource", s[i].g.rsc->id);
        json_string(&j, "state", s[i].state);
        json_open_list(&j, "hosts");
        for (size_t k = 0; k < s[i].n_st; k++)
            for (char **h = s[i].st[k]->nodes; h && *h; h++)
                json_string(&j, NULL, *h);
        json_close(&j, ']');
        json_string(&j, "role", s[i].role);
        json_bool(&j, "replicated", s[i].replicated);
        json_string(&j, "primary", s[i].primary[0] ? s[i].primary : NULL);
        json_string(&j, "backup", s[i].backup[0] ? s[i].backup : NULL);
        json_string(&j, "replication_auth", s[i].auth);
        json_count(&j, "replication_lag_s", s[i].lag_s);
        json_count(&j, "nvram_generation", s[i].nvram_gen);
        json_count(&j, "nvram_booted", s[i].nvram_booted);
        json_string(&j, "install", strcmp(s[i].install, "-") ? s[i].install : NULL);
        json_string(&j, "floor", strcmp(s[i].floor, "-") ? s[i].floor : NULL);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_open_list(&j, "hosts");
    for (size_t i = 0; i < v->n; i++) {
        json_open(&j, NULL);
        json_string(&j, "name", v->nodes[i].name);
        json_bool(&j, "online", v->nodes[i].online);
        json_string(&j, "level", cluster_node_attr(&v->nodes[i], MIG_ATTR_LEVEL, true));
        json_bool(&j, "pinned", cluster_node_attr(&v->nodes[i], MIG_ATTR_PIN_LEVEL, false));
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_close(&j, '}');
}

static void print_table(const struct cluster_view *v, const struct gstatus *s, size_t n)
{
    printf("%-12s %-9s %-12s %-8s %-4s %-7s %-8s %s\n", "GUEST", "STATE", "HOST", "ROLE", "LAG",
           "NVRAM", "INSTALL", "FLOOR");
    for (size_t i = 0; i < n; i++) {
        char nv[24] = "-", lag[24] = "-";
        if (s[i].nvram_gen >= 0)
            snprintf(nv, sizeof(nv), "%ld", s[i].nvram_gen);
        if (s[i].lag_s >= 0)
            snprintf(lag, sizeof(lag), "%lds", s[i].lag_s);
        const char *floor =
            strcmp(s[i].floor, "-") ? s[i].floor + strcspn(s[i].floor, " ") + 1 : "-";
        if (s[i].replicated && (s[i].primary[0] || s[i].backup[0])) {
            /* One line per instance: where the guest runs, and where its replica is. */
            if (s[i].primary[0])
                printf("%-12.12s %-9s %-12.12s %-8s %-4s %-7s %-8s %s\n", s[i].g.name, s[i].state,
                       s[i].primary, "primary", lag, nv, s[i].install, floor);
            if (s[i].backup[0])
                printf("%-12.12s %-9s %-12.12s %-8s %-4s %-7s %-8s %s\n", s[i].g.name,
                       s[i].primary[0] ? "replica" : s[i].state, s[i].backup, "backup", "-", "-",
                       "-", "-");
            continue;
        }
        printf("%-12.12s %-9s %-12.12s %-8s %-4s %-7s %-8s %s\n", s[i].g.name, s[i].state,
               s[i].hosts, s[i].role, "-", nv, s[i].install, floor);
    }
    if (n == 0)
        printf("(no %s resources)\n", CLI_GUEST_AGENT);
    for (size_t i = 0; i < n; i++)
        if (s[i].auth && strcmp(s[i].auth, "none") == 0)
            printf("\nWARNING: %s replicates WITHOUT AUTHENTICATION (replication_insecure=true): "
                   "whoever reaches its\nbackup's replication port decides what a promotion "
                   "runs. For a lab only.\n",
                   s[i].g.name);
    printf("\n%-12s %-8s %s\n", "HOST", "STATE", "LEVEL");
    for (size_t i = 0; i < v->n; i++) {
        const char *lv = cluster_node_attr(&v->nodes[i], MIG_ATTR_LEVEL, true);
        printf("%-12.12s %-8s %s%s\n", v->nodes[i].name, v->nodes[i].online ? "online" : "offline",
               lv ? lv : "-",
               lv && cluster_node_attr(&v->nodes[i], MIG_ATTR_PIN_LEVEL, false) ? " (pinned)" : "");
    }
}

static int status_once(int argc, char **argv, const struct cli_opts *o)
{
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cluster_rsc_state *states = NULL;
    size_t n_states = 0;
    struct vmha_err e = {0};
    if (cluster_read(&dl, &v, &e) < 0 || cluster_resource_states(&dl, &states, &n_states, &e) < 0) {
        fprintf(stderr, "vmha status: %s (is the cluster running on this host?)\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_free_ struct gstatus *s = calloc(v.n_rsc ? v.n_rsc : 1, sizeof(*s));
    size_t n = 0;
    for (size_t i = 0; s && i < v.n_rsc; i++) {
        if (strcmp(v.rsc[i].agent, CLI_GUEST_AGENT) != 0)
            continue;
        struct gstatus *g = &s[n];
        memset(g, 0, sizeof(*g));
        cli_guest_load(&v.rsc[i], &g->g);
        bool wanted = argc <= 1;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], g->g.name) == 0 || strcmp(argv[a], v.rsc[i].id) == 0;
        if (!wanted)
            continue;
        for (size_t k = 0; k < n_states && g->n_st < 8; k++)
            if (same_resource(states[k].id, v.rsc[i].id))
                g->st[g->n_st++] = &states[k];
        fill(&v, g);
        n++;
    }
    int rc = VMHA_EXIT_OK;
    if (!s) {
        fprintf(stderr, "vmha status: out of memory\n");
        rc = VMHA_EXIT_FAILED;
    } else if (argc > 1 && n == 0) {
        fprintf(stderr, "vmha status: no %s resource named %s\n", CLI_GUEST_AGENT, argv[1]);
        rc = VMHA_EXIT_FAILED;
    } else if (o->json) {
        print_json(&v, s, n);
    } else {
        print_table(&v, s, n);
    }
    cluster_resource_states_free(states, n_states);
    return rc;
}

static volatile sig_atomic_t interrupted;

static void on_int(int sig)
{
    (void)sig;
    interrupted = 1;
}

int cmd_status(int argc, char **argv, const struct cli_opts *o)
{
    uint64_t watch_ms = 0;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cli_usage("status", stdout, true);
        if (strncmp(argv[i], "--watch", 7) == 0) {
            watch_ms = 2000;
            if (argv[i][7] == '=' &&
                (vmha_parse_duration_ms(argv[i] + 8, 1000, &watch_ms) < 0 || watch_ms < 200)) {
                fprintf(stderr, "vmha status: %s: give at least 0.2 s, e.g. --watch=5\n", argv[i]);
                return VMHA_EXIT_USAGE;
            }
            continue;
        }
        argv[kept++] = argv[i];
    }
    if (!watch_ms)
        return status_once(kept, argv, o);
    signal(SIGINT, on_int);
    signal(SIGTERM, on_int);
    bool tty = isatty(STDOUT_FILENO);
    while (!interrupted) {
        if (tty)
            fputs("\033[H\033[2J", stdout);
        int rc = status_once(kept, argv, o);
        if (!tty)
            putchar('\n');
        fflush(stdout);
        if (rc != VMHA_EXIT_OK && !tty)
            return rc;
        for (uint64_t slept = 0; slept < watch_ms && !interrupted; slept += 100)
            usleep(100 * 1000);
    }
    return VMHA_EXIT_OK;
}
