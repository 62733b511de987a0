/* vmha boot GUEST: the guest's install state and its boot artifacts, checked per host (as
 * each node's ocf:vmha:node clone publishes it) and on this host directly; vmha boot --record
 * GUEST records (and signs) them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/hv.h"
#include "vmha/migrate.h"

static bool install_shorthand(const struct cli_guest *g)
{
    static const char *const shorthand[] = {"install_kernel", "install_initrd", "install_cmdline",
                                            "install_media"};
    bool has = false;
    for (size_t i = 0; i < 4; i++) {
        const char *s = cluster_rsc_param(g->rsc, shorthand[i]);
        has |= s && s[0];
    }
    return has;
}

static const char *param_or_null(const struct cli_guest *g, const char *name)
{
    const char *s = cluster_rsc_param(g->rsc, name);
    return s && s[0] ? s : NULL;
}

static void record_json(struct cli_json *j, const char *gdir, const char *name)
{
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    struct vmha_err e = {0};
    store_read(gdir, name, &rec, &e);
    static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256"};
    json_open(j, NULL);
    json_string(j, "record", name);
    for (size_t i = 0; i < 4; i++)
        json_string(j, keys[i], store_kv_get(&rec, keys[i]));
    json_bool(j, "signed", store_kv_get(&rec, "hmac_sha256"));
    json_close(j, '}');
}

static void record_text(const char *gdir, const char *name)
{
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    struct vmha_err e = {0};
    store_read(gdir, name, &rec, &e);
    static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256"};
    printf("recorded %s/%s (%s):\n", gdir, name,
           store_kv_get(&rec, "hmac_sha256") ? "signed" : "unsigned");
    for (size_t i = 0; i < 4; i += 2) {
        const char *path = store_kv_get(&rec, keys[i]), *d = store_kv_get(&rec, keys[i + 1]);
        if (path && path[0])
            printf("  %-6s %s\n         sha256 %s\n", keys[i], path, d ? d : "-");
    }
}

/* vmha boot --record GUEST: what a start with artifact_key set never does by itself. The
 * files are measured on this host, as they are now: the operator checks them first. */
static int record(const struct cli_guest *g, const struct cli_opts *o)
{
    struct vmha_err e = {0};
    if (!g->state_dir) {
        fprintf(stderr,
                "vmha boot: guest %s has no state_dir: there is nowhere to record its "
                "boot artifacts\n",
                g->name);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_(hv_guest_config_clear) struct hv_guest_config cfg = {0};
    if (cli_guest_config(g, &cfg, &e) < 0) {
        fprintf(stderr, "vmha boot: the config of guest %s: %s\n", g->name, e.msg);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_(boot_key_clear) struct boot_key key = {0};
    const char *key_path = param_or_null(g, "artifact_key");
    if (key_path && boot_key_load(key_path, &key, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_free_ char *gdir = NULL;
    if (store_guest_dir(g->state_dir, g->name, &gdir, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    struct boot_artifacts a = {.kernel = cfg.kernel, .initrd = cfg.initrd, .cmdline = cfg.cmdline};
    struct boot_record_ref ref = {
        .gdir = gdir, .guest = g->name, .name = STATE_ARTIFACTS, .key = &key};
    const char *done[2];
    size_t n = 0;
    if (a.kernel || a.initrd) {
        if (boot_artifacts_record(&ref, &a, param_or_null(g, "kernel_sha256"),
                                  param_or_null(g, "initrd_sha256"), &e) < 0) {
            fprintf(stderr, "vmha boot: guest %s: %s\n", g->name, e.msg);
            return VMHA_EXIT_FAILED;
        }
        done[n++] = STATE_ARTIFACTS;
    }
    /* The installer's files, as the agent checks them: until the install is done. */
    struct install_record ir;
    if (install_shorthand(g) && !param_or_null(g, "install_config") &&
        install_read(gdir, &ir, &e) == 0 && ir.state != INSTALL_DONE) {
        struct boot_artifacts ia = {.kernel = param_or_null(g, "install_kernel") ?: cfg.kernel,
                                    .initrd = param_or_null(g, "install_initrd") ?: cfg.initrd,
                                    .cmdline = param_or_null(g, "install_cmdline") ?: cfg.cmdline};
        ref.name = STATE_INSTALL_ARTIFACTS;
        if ((ia.kernel || ia.initrd) && boot_artifacts_record(&ref, &ia, NULL, NULL, &e) < 0) {
            fprintf(stderr, "vmha boot: guest %s, install boot: %s\n", g->name, e.msg);
            return VMHA_EXIT_FAILED;
        }
        if (ia.kernel || ia.initrd)
            done[n++] = STATE_INSTALL_ARTIFACTS;
    }
    if (n == 0) {
        fprintf(stderr,
                "vmha boot: guest %s boots no kernel directly: there are no boot "
                "artifacts to record\n",
                g->name);
        return VMHA_EXIT_FAILED;
    }
    if (o->json) {
        struct cli_json j = {.f = stdout};
        json_open(&j, NULL);
        json_string(&j, "guest", g->name);
        json_open_list(&j, "recorded");
        for (size_t i = 0; i < n; i++)
            record_json(&j, gdir, done[i]);
        json_close(&j, ']');
        json_close(&j, '}');
        return VMHA_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        record_text(gdir, done[i]);
    if (!key.len)
        printf("(no artifact_key: the record is not signed)\n");
    return VMHA_EXIT_OK;
}

/* What vmha boot GUEST shows, gathered once for both formats. */
struct boot_view {
    const struct cli_guest *g;
    const struct cluster_view *v;
    char *gdir;
    struct install_record ir;
    bool has_install, recorded;
    struct store_kv rec;
    int here_r; /* this host's files against the record */
    struct vmha_err here;
    char attr[1024]; /* the node attribute with each host's verdict */
};

static void boot_view_clear(struct boot_view *b)
{
    free(b->gdir);
    store_kv_clear(&b->rec);
}

static int boot_gather(struct boot_view *b)
{
    struct vmha_err e = {0};
    const struct cli_guest *g = b->g;
    if (store_guest_dir(g->state_dir, g->name, &b->gdir, &e) < 0 ||
        install_read(b->gdir, &b->ir, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return -1;
    }
    b->has_install = param_or_null(g, "install_config") || install_shorthand(g);
    b->recorded = store_read(b->gdir, STATE_ARTIFACTS, &b->rec, &e) == 0;
    bool here_recorded = false;
    b->here_r = boot_artifacts_verify_files(b->gdir, STATE_ARTIFACTS, &here_recorded, &b->here);
    snprintf(b->attr, sizeof(b->attr), "%s%s", MIG_ATTR_BOOT_PREFIX, g->name);
    return 0;
}

static void boot_json(const struct boot_view *b)
{
    struct cli_json j = {.f = stdout};
    const struct install_record *ir = &b->ir;
    json_open(&j, NULL);
    json_string(&j, "guest", b->g->name);
    json_open(&j, "install");
    json_bool(&j, "configured", b->has_install);
    json_string(&j, "state", install_state_name(ir->state));
    json_string(&j, "host", ir->host);
    json_uint(&j, "attempts", ir->attempts);
    json_uint(&j, "changed", (unsigned long long)ir->changed);
    json_close(&j, '}');
    if (!b->recorded) {
        json_null(&j, "artifacts");
    } else {
        static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256"};
        json_open(&j, "artifacts");
        for (size_t i = 0; i < 4; i++)
            json_string(&j, keys[i], store_kv_get(&b->rec, keys[i]));
        json_bool(&j, "signed", store_kv_get(&b->rec, "hmac_sha256"));
        json_close(&j, '}');
    }
    json_open_list(&j, "hosts");
    for (size_t i = 0; i < b->v->n; i++) {
        json_open(&j, NULL);
        json_string(&j, "node", b->v->nodes[i].name);
        json_string(&j, "check", cluster_node_attr(&b->v->nodes[i], b->attr, true));
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_string(&j, "this_host", b->here_r < 0 ? b->here.msg : "ok");
    json_close(&j, '}');
}

static void boot_text(const struct boot_view *b)
{
    const struct install_record *ir = &b->ir;
    char t[32] = "-";
    time_t tt = (time_t)ir->changed;
    struct tm tm;
    if (ir->changed && localtime_r(&tt, &tm))
        strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);
    printf("guest %s\n", b->g->name);
    if (b->has_install || ir->state != INSTALL_NOT_STARTED)
        printf("install: %s%s%s (%u install boot%s, %s)\n", install_state_name(ir->state),
               ir->host[0] ? " on " : "", ir->host, ir->attempts, ir->attempts == 1 ? "" : "s", t);
    else
        printf("install: none configured\n");
    if (!b->recorded) {
        printf("boot artifacts: none recorded (the guest boots from its disk or firmware, or "
               "has not been defined yet)\n");
        return;
    }
    printf("boot artifacts (%s):\n", store_kv_get(&b->rec, "hmac_sha256") ? "signed" : "unsigned");
    static const char *const what[] = {"kernel", "initrd"};
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_sha256", what[i]);
        const char *path = store_kv_get(&b->rec, what[i]), *d = store_kv_get(&b->rec, key);
        if (path && path[0])
            printf("  %-6s %s\n         sha256 %s\n", what[i], path, d ? d : "-");
    }
    printf("\n%-12s %s\n", "HOST", "ARTIFACTS");
    for (size_t i = 0; i < b->v->n; i++) {
        const char *verdict = cluster_node_attr(&b->v->nodes[i], b->attr, true);
        printf("%-12.12s %s\n", b->v->nodes[i].name,
               verdict                 ? verdict
               : b->v->nodes[i].online ? "(not published: is ocf:vmha:node running?)"
                                       : "(offline)");
    }
    printf("\nthis host: %s\n", b->here_r < 0 ? b->here.msg : "ok");
}

int cmd_boot(int argc, char **argv, const struct cli_opts *o)
{
    bool do_record = false;
    const char *guest = NULL;
    bool usage = false, help = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            help = true;
        else if (strcmp(argv[i], "--record") == 0)
            do_record = true;
        else if (argv[i][0] == '-' || guest)
            usage = true;
        else
            guest = argv[i];
    }
    if (help || usage || !guest) {
        cli_usage("boot", help ? stdout : stderr, help);
        return help ? VMHA_EXIT_OK : VMHA_EXIT_USAGE;
    }
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cli_guest g;
    if (cli_open_guest("boot", guest, o, &v, &g) < 0)
        return VMHA_EXIT_FAILED;
    if (do_record)
        return record(&g, o);
    if (!g.state_dir) {
        fprintf(stderr, "vmha boot: guest %s has no state_dir: nothing is recorded\n", g.name);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_(boot_view_clear) struct boot_view b = {.g = &g, .v = &v};
    if (boot_gather(&b) < 0)
        return VMHA_EXIT_FAILED;
    if (o->json)
        boot_json(&b);
    else
        boot_text(&b);
    return VMHA_EXIT_OK;
}
