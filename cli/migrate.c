/* vmha migrate GUEST HOST: checks the migration policy first and explains a refusal, asks
 * Pacemaker to move the guest (never bypassing it), shows the hypervisor's progress, waits
 * until the cluster has settled, and clears the move constraint unless asked to keep it.
 * vmha failover GUEST: for a plain guest, the same move to the best other host. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_private.h"
#include "vmha/cleanup.h"
#include "vmha/hv.h"
#include "vmha/migrate.h"
#include "vmha/remus.h"
#include "vmha/state.h"

/* Where the guest runs now, by the cluster's computation; "" when stopped. */
static int location(const struct cli_guest *g, const struct vmha_deadline *dl, char *host,
                    size_t size, bool *failed, struct vmha_err *err)
{
    struct cluster_rsc_state *st = NULL;
    size_t n = 0;
    int r = cluster_resource_states(dl, &st, &n, err);
    if (r < 0)
        return r;
    host[0] = '\0';
    *failed = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].id, g->rsc->id) == 0) {
            *failed = st[i].failed;
            if (st[i].nodes && st[i].nodes[0])
                snprintf(host, size, "%s", st[i].nodes[0]);
        }
    cluster_resource_states_free(st, n);
    return 0;
}

/* The libvirt URI of a node's hypervisor, as the guest's migration reaches it; -ENAMETOOLONG
 * when it does not fit (cut short, it could name another host). */
static int node_uri(const struct cli_guest *g, const char *node, char *buf, size_t size)
{
    const char *tmpl = cluster_rsc_param(g->rsc, "migrate_target");
    const char *transport = cluster_rsc_param(g->rsc, "migration_transport");
    char fallback[128];
    if (!tmpl || !tmpl[0]) {
        snprintf(fallback, sizeof(fallback), "qemu+%s://%%n/system",
                 transport && transport[0] ? transport : "ssh");
        tmpl = fallback;
    }
    size_t o = 0;
    for (const char *s = tmpl; *s; s++) {
        if (s[0] == '%' && s[1] == 'n') {
            o += (size_t)snprintf(buf + o, size - o, "%s", node);
            s++;
        } else if (o + 1 < size) {
            buf[o++] = *s;
        } else {
            o = size;
        }
        if (o >= size)
            return -ENAMETOOLONG;
    }
    buf[o] = '\0';
    return 0;
}

static void show_progress(const struct hv_progress *p, bool tty)
{
    unsigned pct = p->data_total ? (unsigned)(p->data_processed * 100 / p->data_total) : 0;
    char bar[31];
    for (unsigned i = 0; i < 30; i++)
        bar[i] = i < pct * 30 / 100 ? '#' : '.';
    bar[30] = '\0';
    char line[160];
    snprintf(line, sizeof(line),
             "[%s] %3u%% %llu/%llu MiB, %llu MiB left, dirty %llu pages/s, "
             "downtime ~%llu ms",
             bar, pct, (unsigned long long)(p->data_processed >> 20),
             (unsigned long long)(p->data_total >> 20),
             (unsigned long long)(p->data_remaining >> 20),
             (unsigned long long)p->dirty_pages_per_s, (unsigned long long)p->expected_downtime_ms);
    if (tty)
        printf("\r%-79.79s", line);
    else
        printf("%s\n", line);
    fflush(stdout);
}

static int run_tool(char *const argv[], const struct cli_opts *o, const char *what)
{
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
    struct vmha_err e = {0};
    if (vmha_run(argv, &dl, &e) < 0) {
        fprintf(stderr, "vmha: cannot %s: %s\n", what, e.msg);
        return -1;
    }
    return 0;
}

static int move(const struct cli_guest *g, const char *target, const char *from,
                const struct cli_opts *o, uint64_t wait_ms, bool keep)
{
    const char *id = g->rsc->id;
    bool tty = isatty(STDOUT_FILENO);
    printf("moving %s from %s to %s\n", g->name, from[0] ? from : "(stopped)", target);
    /* Pacemaker 2.1 has no public C API to move a resource: crm_resource is the door. */
    char *const mv[] = {"crm_resource", "--move",       "--resource", (char *)id,
                        "--node",       (char *)target, NULL};
    if (run_tool(mv, o, "ask Pacemaker to move the guest") < 0)
        return VMHA_EXIT_FAILED;
    struct hv *hv = NULL;
    struct vmha_err e = {0};
    struct vmha_deadline until = vmha_deadline_in(wait_ms);
    if (from[0]) {
        char uri[512];
        struct vmha_deadline odl = vmha_deadline_in(5000);
        if (node_uri(g, from, uri, sizeof(uri)) < 0) {
            printf("(no progress: the URI of %s's hypervisor is longer than %zu bytes)\n", from,
                   sizeof(uri) - 1);
        } else if (hv_open(uri, &odl, &hv, &e) < 0) {
            printf("(no progress: cannot reach %s's hypervisor at %s: %s)\n", from, uri, e.msg);
        }
    }
    char now[256] = "";
    bool failed = false, shown = false;
    uint64_t last_line = 0;
    int rc = VMHA_EXIT_FAILED;
    for (;;) {
        struct hv_progress p;
        if (hv && hv_can(hv, HV_FEAT_JOB_PROGRESS) && hv_job_progress(hv, g->name, &p, &e) == 0 &&
            (tty || vmha_now_ms() - last_line >= 2000)) {
            show_progress(&p, tty);
            shown = true;
            last_line = vmha_now_ms();
        }
        struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
        if (location(g, &dl, now, sizeof(now), &failed, &e) == 0) {
            if (strcmp(now, target) == 0 && !failed) {
                rc = VMHA_EXIT_OK;
                break;
            }
            if (failed)
                break;
        }
        if (!vmha_deadline_sleep(&until, 500))
            break;
    }
    hv_close(hv);
    if (shown && tty)
        printf("\n");
    if (rc == VMHA_EXIT_OK)
        printf("%s runs on %s\n", g->name, target);
    else if (failed)
        printf("%s failed while moving (it is %s): see crm_mon --include=failcounts\n", g->name,
               now[0] ? now : "stopped");
    else
        printf("%s did not reach %s in time (it is on %s)\n", g->name, target,
               now[0] ? now : "no host");
    if (!keep) {
        char *const clear[] = {"crm_resource", "--clear", "--resource", (char *)id, NULL};
        if (run_tool(clear, o, "clear the move constraint") == 0)
            printf("move constraint cleared (stickiness keeps the guest where it is)\n");
    } else {
        printf("move constraint kept: 'crm_resource --clear --resource %s' removes it\n", id);
    }
    return rc;
}

/* The policy's verdict for target, or true when the guest has no policy. */
static bool allowed(const struct cluster_view *v, const struct cli_guest *g, const char *target,
                    char *why, size_t size)
{
    if (!g->policy)
        return true;
    const struct cluster_node *n = cluster_node_find(v, target);
    struct mig_record rec;
    struct vmha_err e = {0};
    if (mig_record_read(g->state_dir, g->name, &rec, &e) < 0 && e.code != -ENOENT) {
        snprintf(why, size, "%s", e.msg);
        return false;
    }
    if (e.code == -ENOENT)
        memset(&rec, 0, sizeof(rec));
    const char *w = cluster_rsc_param(g->rsc, "migration_window");
    uint64_t window = 1;
    if (w)
        vmha_parse_uint(w, 1000, &window);
    rec.window = (unsigned)window;
    snprintf(rec.family, sizeof(rec.family), "%s", g->family);
    snprintf(rec.config_machine, sizeof(rec.config_machine), "%s", g->config_machine);
    struct mig_need need;
    struct mig_host h;
    mig_record_need(&rec, &need);
    mig_host_of(n, &h);
    return mig_allowed(&need, &h, why, size);
}

static int prepare(int argc, char **argv, const struct cli_opts *o, struct cluster_view *v,
                   struct cli_guest *g, char *from, size_t from_size)
{
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
    struct vmha_err e = {0};
    bool failed;
    if (cli_open_guest(argv[0], argv[1], o, v, g) < 0)
        return -1;
    if (location(g, &dl, from, from_size, &failed, &e) < 0) {
        fprintf(stderr, "vmha %s: %s\n", argv[0], e.msg);
        return -1;
    }
    (void)argc;
    return 0;
}

/* Options common to migrate and failover; removes them from argv. */
static int options(int *argc, char **argv, uint64_t *wait_ms, bool *keep, bool *yes)
{
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--keep-constraint") == 0)
            *keep = true;
        else if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0)
            *yes = true;
        else if (strncmp(argv[i], "--wait=", 7) == 0) {
            if (vmha_parse_duration_ms(argv[i] + 7, 1000, wait_ms) < 0) {
                fprintf(stderr, "vmha: %s is not a duration\n", argv[i]);
                return -1;
            }
        } else
            argv[kept++] = argv[i];
    }
    *argc = kept;
    return 0;
}

static bool direct_progress(const struct hv_progress *p, void *opaque)
{
    show_progress(p, *(bool *)opaque);
    return true;
}

/* --no-cluster is for a cluster that is down: true (after saying so) when Pacemaker runs
 * here and manages the guest. */
static bool cluster_manages(const char *cmd, const char *guest, const struct cli_opts *o)
{
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms < 3000 ? o->timeout_ms : 3000);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct cli_guest g;
    if (cluster_read(&dl, &v, &e) < 0 || cli_guest_find(&v, guest, &g) < 0)
        return false;
    fprintf(stderr,
            "vmha %s: Pacemaker runs and manages %s (resource %s): refusing "
            "--no-cluster; use vmha %s without it\n",
            cmd, guest, g.rsc->id, cmd);
    return true;
}

/* --no-cluster: the hypervisor operation itself, for when the cluster is down. Refuses when
 * Pacemaker runs here and manages the guest: then only Pacemaker may move it. */
static int migrate_direct(const char *guest, const char *host, const char *uri,
                          const char *target_uri, const char *data_uri, const struct cli_opts *o,
                          uint64_t wait_ms)
{
    struct vmha_err e = {0};
    if (cluster_manages("migrate", guest, o))
        return VMHA_EXIT_FAILED;
    _cleanup_free_ char *dest = NULL;
    const struct hv_backend *b;
    char tmpl[1024];
    const char *n = NULL;
    if (!target_uri && (hv_backend_for_uri(uri, &b, &e) < 0 ||
                        hv_migrate_target_template(b, uri, "ssh", tmpl, sizeof(tmpl), &e) < 0)) {
        fprintf(stderr, "vmha migrate: %s (give the target's URI with --target-uri)\n", e.msg);
        return VMHA_EXIT_USAGE;
    }
    if (!target_uri && !(n = strstr(tmpl, "%n"))) {
        fprintf(stderr, "vmha migrate: give the target's URI with --target-uri\n");
        return VMHA_EXIT_USAGE;
    }
    if (target_uri ? !(dest = strdup(target_uri))
                   : asprintf(&dest, "%.*s%s%s", (int)(n - tmpl), tmpl, host, n + 2) < 0) {
        fprintf(stderr, "vmha migrate: out of memory\n");
        return VMHA_EXIT_FAILED;
    }
    struct hv *hv = NULL;
    struct vmha_deadline until = vmha_deadline_in(wait_ms);
    if (hv_open(uri, &until, &hv, &e) < 0) {
        fprintf(stderr, "vmha migrate: cannot reach the hypervisor at %s: %s\n", uri, e.msg);
        return VMHA_EXIT_FAILED;
    }
    struct hv_guest_info info;
    int rc = VMHA_EXIT_FAILED;
    if (hv_lookup(hv, guest, &info, &e) < 0 || info.state != HV_STATE_RUNNING) {
        fprintf(stderr, "vmha migrate: guest %s does not run at %s%s%s\n", guest, uri,
                e.msg[0] ? ": " : "", e.msg);
    } else {
        bool tty = isatty(STDOUT_FILENO);
        struct hv_migrate_params mp = {.dest_uri = dest,
                                       .data_uri = data_uri,
                                       .progress = direct_progress,
                                       .opaque = &tty,
                                       .poll_ms = tty ? 500 : 2000};
        printf("migrating %s to %s (%s), without the cluster\n", guest, host, dest);
        fflush(stdout);
        if (hv_migrate(hv, guest, &mp, &e) < 0) {
            fprintf(stderr, "%svmha migrate: %s (the guest keeps running at %s)\n", tty ? "\n" : "",
                    e.msg, uri);
        } else {
            printf("%s%s runs on %s\n", tty ? "\n" : "", guest, host);
            rc = VMHA_EXIT_OK;
        }
    }
    hv_close(hv);
    return rc;
}

int cmd_migrate(int argc, char **argv, const struct cli_opts *o)
{
    uint64_t wait_ms = 300000;
    bool keep = false, yes = false;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_usage("migrate", stdout, true);
    const char *uri = "qemu:///system", *target_uri = NULL, *data_uri = NULL;
    bool direct = false;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-cluster") == 0)
            direct = true;
        else if (strncmp(argv[i], "--uri=", 6) == 0)
            uri = argv[i] + 6;
        else if (strncmp(argv[i], "--target-uri=", 13) == 0)
            target_uri = argv[i] + 13;
        else if (strncmp(argv[i], "--migrateuri=", 13) == 0)
            data_uri = argv[i] + 13;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    if (options(&argc, argv, &wait_ms, &keep, &yes) < 0 || argc != 3) {
        return cli_usage("migrate", stderr, false);
    }
    if (direct)
        return migrate_direct(argv[1], argv[2], uri, target_uri, data_uri, o, wait_ms);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cli_guest g;
    char from[256];
    if (prepare(argc, argv, o, &v, &g, from, sizeof(from)) < 0)
        return VMHA_EXIT_FAILED;
    const char *rep = cluster_rsc_param(g.rsc, "replicate");
    bool replicated = false;
    if (rep && vmha_parse_bool(rep, &replicated) == 0 && replicated) {
        fprintf(stderr,
                "vmha migrate: %s is replicated: it moves by a switchover to its "
                "backup, 'vmha failover %s --planned' (nothing was changed)\n",
                g.name, g.name);
        return VMHA_EXIT_FAILED;
    }
    const struct cluster_node *n = cluster_node_find(&v, argv[2]);
    if (!n) {
        fprintf(stderr, "vmha migrate: %s is not a node of this cluster\n", argv[2]);
        return VMHA_EXIT_FAILED;
    }
    if (!n->online) {
        fprintf(stderr, "vmha migrate: %s is offline\n", argv[2]);
        return VMHA_EXIT_FAILED;
    }
    if (strcmp(from, argv[2]) == 0) {
        printf("%s already runs on %s\n", g.name, argv[2]);
        return VMHA_EXIT_OK;
    }
    char why[512];
    if (!allowed(&v, &g, argv[2], why, sizeof(why))) {
        fprintf(stderr,
                "vmha migrate: refused by the migration policy: %s\n"
                "(nothing was changed; 'vmha paths %s' shows where it may go)\n",
                why, g.name);
        return VMHA_EXIT_FAILED;
    }
    return move(&g, argv[2], from, o, wait_ms, keep);
}

/* Where a replicated guest's promoted and unpromoted instances are, "" when nowhere. */
static int roles(const struct cli_guest *g, char *primary, char *backup, size_t size,
                 struct vmha_err *err)
{
    struct cluster_rsc_state *st = NULL;
    size_t n = 0;
    struct vmha_deadline dl = vmha_deadline_in(10000);
    int r = cluster_resource_states(&dl, &st, &n, err);
    if (r < 0)
        return r;
    primary[0] = backup[0] = '\0';
    size_t len = strlen(g->rsc->id);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(st[i].id, g->rsc->id, len) != 0 || (st[i].id[len] && st[i].id[len] != ':') ||
            !st[i].nodes || !st[i].nodes[0])
            continue;
        if (strcmp(st[i].role, "Promoted") == 0 || strcmp(st[i].role, "Master") == 0)
            snprintf(primary, size, "%s", st[i].nodes[0]);
        else /* libpe_status calls a running unpromoted instance "Started" */
            snprintf(backup, size, "%s", st[i].nodes[0]);
    }
    cluster_resource_states_free(st, n);
    return 0;
}

static bool confirm(const char *cmd, bool yes)
{
    if (yes)
        return true;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "vmha %s: not a terminal: confirm with --yes\n", cmd);
        return false;
    }
    printf("Proceed? [y/N] ");
    fflush(stdout);
    char answer[16] = "";
    if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
        printf("nothing was changed\n");
        return false;
    }
    return true;
}

/* Waits until the promoted instance runs on target (and, unless forced, a backup again). */
static int wait_promoted(const struct cli_guest *g, const char *target, bool want_backup,
                         uint64_t wait_ms)
{
    struct vmha_deadline until = vmha_deadline_in(wait_ms);
    char p[256], b[256], last[600] = "";
    struct vmha_err e = {0};
    uint64_t t0 = vmha_now_ms();
    for (;;) {
        if (roles(g, p, b, sizeof(p), &e) == 0) {
            char line[600];
            snprintf(line, sizeof(line), "  primary %s, backup %s", p[0] ? p : "-", b[0] ? b : "-");
            if (strcmp(line, last) != 0) {
                printf("%s (%.1f s)\n", line, (double)(vmha_now_ms() - t0) / 1000);
                fflush(stdout);
                snprintf(last, sizeof(last), "%s", line);
            }
            if (strcmp(p, target) == 0 && (!want_backup || b[0]))
                return VMHA_EXIT_OK;
        }
        if (!vmha_deadline_sleep(&until, 300)) {
            printf("%s is not promoted on %s in time (primary %s)\n", g->name, target,
                   p[0] ? p : "none");
            return VMHA_EXIT_FAILED;
        }
    }
}

/* vmha failover of a replicated guest: a planned switchover to the backup, or (when the
 * primary's host is down but not fenced) confirming it down so that Pacemaker promotes the
 * backup from its last checkpoint. */
static int failover_replicated(const struct cluster_view *v, const struct cli_guest *g,
                               bool planned, bool yes, bool keep, uint64_t wait_ms,
                               const struct cli_opts *o)
{
    char p[256], b[256];
    struct vmha_err e = {0};
    if (roles(g, p, b, sizeof(p), &e) < 0) {
        fprintf(stderr, "vmha failover: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    if (!p[0]) {
        fprintf(stderr, "vmha failover: %s is not promoted anywhere: nothing to fail over\n",
                g->name);
        return VMHA_EXIT_FAILED;
    }
    const struct cluster_node *pn = cluster_node_find(v, p);
    bool p_online = pn && pn->online;
    if (planned) {
        if (!b[0] || !p_online) {
            fprintf(stderr,
                    "vmha failover: %s has %s: a planned switchover needs both "
                    "running (nothing was changed)\n",
                    g->name, !b[0] ? "no backup" : "its primary host offline");
            return VMHA_EXIT_FAILED;
        }
        printf("%s runs on %s, its replica on %s. A planned switchover takes a final "
               "checkpoint on %s and resumes the guest from it on %s: it pauses for about "
               "a second and loses nothing.\n",
               g->name, p, b, p, b);
        if (!confirm("failover", yes))
            return VMHA_EXIT_FAILED;
        /* No public C API moves a role: crm_resource is the door. */
        char *const mv[] = {"crm_resource", "--move", "--resource", (char *)g->rsc->id,
                            "--node",       b,        "--promoted", NULL};
        if (run_tool(mv, o, "ask Pacemaker to switch over") < 0)
            return VMHA_EXIT_FAILED;
        int rc = wait_promoted(g, b, true, wait_ms);
        if (rc == VMHA_EXIT_OK)
            printf("%s runs on %s, protected by its replica on %s\n", g->name, b, p);
        char *const clear[] = {"crm_resource", "--clear", "--resource", (char *)g->rsc->id, NULL};
        if (!keep && run_tool(clear, o, "clear the move constraint") == 0)
            printf("move constraint cleared\n");
        return rc;
    }
    if (p_online) {
        fprintf(stderr,
                "vmha failover: %s runs on %s, which is online: promoting its backup "
                "now would run it twice. Use --planned for a switchover, or fence %s first "
                "(nothing was changed)\n",
                g->name, p, p);
        return VMHA_EXIT_FAILED;
    }
    if (!b[0]) {
        fprintf(stderr, "vmha failover: %s has no backup to promote (nothing was changed)\n",
                g->name);
        return VMHA_EXIT_FAILED;
    }
    printf("%s's primary host %s is offline and not known to be fenced; its backup on %s "
           "holds the last checkpoint. Confirm ONLY if %s is powered off: Pacemaker then "
           "treats it as fenced and promotes %s.\n",
           g->name, p, b, p, b);
    if (!confirm("failover", yes))
        return VMHA_EXIT_FAILED;
    /* Manual fencing confirmation is the cluster's own way to say "that host is down". */
    char *const fence[] = {"stonith_admin", "--confirm", p, NULL};
    if (run_tool(fence, o, "confirm the primary's host down") < 0)
        return VMHA_EXIT_FAILED;
    int rc = wait_promoted(g, b, false, wait_ms);
    if (rc == VMHA_EXIT_OK)
        printf("%s runs on %s from its last checkpoint\n", g->name, b);
    return rc;
}

/* --no-cluster on a replicated guest's backup host: the checkpoint it holds, resumed. */
static int failover_direct(const char *guest, const char *uri, bool yes, const struct cli_opts *o)
{
    struct vmha_err e = {0};
    if (cluster_manages("failover", guest, o))
        return VMHA_EXIT_FAILED;
    if (!store_name_ok(guest)) {
        fprintf(stderr, "vmha failover: '%s' is not a guest name\n", guest);
        return VMHA_EXIT_USAGE;
    }
    char dir[4200];
    remus_dir(VMHA_RUNDIR, guest, dir, sizeof(dir));
    uint64_t session = 0, epoch = 0;
    if (remus_checkpoint(dir, &session, &epoch) < 0) {
        fprintf(stderr, "vmha failover: this host holds no checkpoint of %s (in %s)\n", guest, dir);
        return VMHA_EXIT_FAILED;
    }
    struct remus_status st = {0};
    remus_status_read(dir, &st, &e);
    uint64_t now = remus_realtime_ms();
    printf("This host holds checkpoint %llu of %s, taken %llu s ago. Without the cluster nobody "
           "checks that its primary is down or that the checkpoint is not stale: resume it "
           "ONLY if the primary's host is powered off.\n",
           (unsigned long long)epoch, guest,
           (unsigned long long)(st.committed_ms && now > st.committed_ms
                                    ? (now - st.committed_ms) / 1000
                                    : 0));
    if (!confirm("failover", yes))
        return VMHA_EXIT_FAILED;
    int pid = 0;
    if (remus_running(dir, "receive", &pid) && pid > 0) {
        kill(pid, SIGTERM); /* no checkpoint may land while it is being restored */
        for (int i = 0; i < 100 && remus_running(dir, "receive", NULL); i++)
            usleep(50 * 1000);
    }
    struct hv *hv = NULL;
    struct vmha_deadline until = vmha_deadline_in(o->timeout_ms);
    if (hv_open(uri, &until, &hv, &e) < 0) {
        fprintf(stderr, "vmha failover: cannot reach the hypervisor at %s: %s\n", uri, e.msg);
        return VMHA_EXIT_FAILED;
    }
    int rc = VMHA_EXIT_FAILED, lock = -1;
    char dev[4300], ram[4300];
    /* The guest's configuration as its backup's agent copied it when the backup started:
     * shared storage may be gone with the cluster. */
    char cpath[4300];
    _cleanup_free_ char *config = NULL;
    snprintf(cpath, sizeof(cpath), "%s/" REMUS_CONFIG_COPY, dir);
    if (vmha_read_file(cpath, 1 << 20, &config, &e) < 0)
        fprintf(stderr,
                "vmha failover: the guest's configuration is not beside its checkpoint "
                "(%s): a checkpoint is restored only with it\n",
                e.msg);
    else if ((lock = remus_checkpoint_files(dir, dev, sizeof(dev), ram, sizeof(ram), &e)) < 0 ||
             hv_ckpt_restore(hv, dev, ram, config, &e) < 0 || hv_resume(hv, guest, &e) < 0)
        fprintf(stderr, "vmha failover: %s\n", e.msg);
    else {
        /* Its disks here held the checkpoint's writes: they are the guest's own now. */
        char mark[4400];
        snprintf(mark, sizeof(mark), "%s/%s/%s", VMHA_LOCALDIR, guest, STATE_DISKS_REPLICA);
        unlink(mark);
        printf("%s runs here from checkpoint %llu, unprotected (no cluster)\n", guest,
               (unsigned long long)epoch);
        rc = VMHA_EXIT_OK;
    }
    if (lock >= 0)
        close(lock);
    hv_close(hv);
    return rc;
}

int cmd_failover(int argc, char **argv, const struct cli_opts *o)
{
    uint64_t wait_ms = 300000;
    bool keep = false, yes = false, planned = false;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_usage("failover", stdout, true);
    int kept = 1;
    bool no_cluster = false;
    const char *uri = "qemu:///system";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--planned") == 0)
            planned = true;
        else if (strcmp(argv[i], "--no-cluster") == 0)
            no_cluster = true;
        else if (strncmp(argv[i], "--uri=", 6) == 0)
            uri = argv[i] + 6;
        else
            argv[kept++] = argv[i];
    argc = kept;
    if (no_cluster) {
        if (options(&argc, argv, &wait_ms, &keep, &yes) < 0 || argc != 2 || planned) {
            return cli_usage("failover", stderr, false);
        }
        return failover_direct(argv[1], uri, yes, o);
    }
    if (options(&argc, argv, &wait_ms, &keep, &yes) < 0 || argc != 2) {
        return cli_usage("failover", stderr, false);
    }
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cli_guest g;
    char from[256];
    if (prepare(argc, argv, o, &v, &g, from, sizeof(from)) < 0)
        return VMHA_EXIT_FAILED;
    const char *rep = cluster_rsc_param(g.rsc, "replicate");
    bool replicated = false;
    if (rep && vmha_parse_bool(rep, &replicated) == 0 && replicated)
        return failover_replicated(&v, &g, planned, yes, keep, wait_ms, o);
    /* For a plain guest every failover is a planned move. */
    if (!from[0]) {
        fprintf(stderr, "vmha failover: %s is not running: nothing to fail over\n", g.name);
        return VMHA_EXIT_FAILED;
    }
    /* The first online host, other than the current one, that the policy allows. */
    const char *target = NULL;
    char why[512];
    for (size_t i = 0; i < v.n && !target; i++)
        if (v.nodes[i].online && strcmp(v.nodes[i].name, from) != 0 &&
            allowed(&v, &g, v.nodes[i].name, why, sizeof(why)))
            target = v.nodes[i].name;
    if (!target) {
        fprintf(stderr,
                "vmha failover: no other host may run %s ('vmha paths %s' says why): "
                "nothing was changed\n",
                g.name, g.name);
        return VMHA_EXIT_FAILED;
    }
    printf("%s runs on %s; it will move to %s (a live migration if the resource allows it).\n",
           g.name, from, target);
    if (!confirm("failover", yes))
        return yes || isatty(STDIN_FILENO) ? VMHA_EXIT_FAILED : VMHA_EXIT_USAGE;
    return move(&g, target, from, o, wait_ms, keep);
}
