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

static void print_record(const char *gdir, const char *name, bool json, bool first)
{
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    struct vmha_err e = {0};
    store_read(gdir, name, &rec, &e);
    static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256"};
    bool is_signed = store_kv_get(&rec, "hmac_sha256") != NULL;
    if (json) {
        printf("%s{\"record\":", first ? "" : ",");
        json_str(stdout, name);
        for (size_t i = 0; i < 4; i++) {
            printf(",\"%s\":", keys[i]);
            json_str(stdout, store_kv_get(&rec, keys[i]));
        }
        printf(",\"signed\":%s}", is_signed ? "true" : "false");
        return;
    }
    printf("recorded %s/%s (%s):\n", gdir, name, is_signed ? "signed" : "unsigned");
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
        ref.name = "install-artifacts";
        if ((ia.kernel || ia.initrd) && boot_artifacts_record(&ref, &ia, NULL, NULL, &e) < 0) {
            fprintf(stderr, "vmha boot: guest %s, install boot: %s\n", g->name, e.msg);
            return VMHA_EXIT_FAILED;
        }
        if (ia.kernel || ia.initrd)
            done[n++] = "install-artifacts";
    }
    if (n == 0) {
        fprintf(stderr,
                "vmha boot: guest %s boots no kernel directly: there are no boot "
                "artifacts to record\n",
                g->name);
        return VMHA_EXIT_FAILED;
    }
    if (o->json) {
        printf("{\"guest\":");
        json_str(stdout, g->name);
        printf(",\"recorded\":[");
    }
    for (size_t i = 0; i < n; i++)
        print_record(gdir, done[i], o->json, i == 0);
    if (o->json)
        printf("]}\n");
    else if (!key.len)
        printf("(no artifact_key: the record is not signed)\n");
    return VMHA_EXIT_OK;
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
        printf("usage: vmha [--json] boot [--record] GUEST\n\n"
               "The guest's install state (not-started, running, done: where and after how\n"
               "many install boots) and its recorded boot artifacts (kernel, initrd), with\n"
               "whether each host's copies match them.\n\n"
               "--record  measures the guest's kernel, initrd and command line on this host\n"
               "          and records them as the ones every host must boot, signed with\n"
               "          artifact_key when it is set (with a key, a start never records by\n"
               "          itself). Check the files first: what is there now is what is signed.\n");
        return help ? VMHA_EXIT_OK : VMHA_EXIT_USAGE;
    }
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct cli_guest g;
    if (cli_open_guest("boot", guest, o, &v, &g) < 0)
        return VMHA_EXIT_FAILED;
    if (do_record)
        return record(&g, o);
    if (!g.state_dir) {
        fprintf(stderr, "vmha boot: guest %s has no state_dir: nothing is recorded\n", g.name);
        return VMHA_EXIT_FAILED;
    }
    _cleanup_free_ char *gdir = NULL;
    if (store_guest_dir(g.state_dir, g.name, &gdir, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    struct install_record ir;
    if (install_read(gdir, &ir, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    bool has_install = param_or_null(&g, "install_config") || install_shorthand(&g);
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    bool recorded = store_read(gdir, STATE_ARTIFACTS, &rec, &e) == 0;
    bool here_recorded = false;
    struct vmha_err here = {0};
    int here_r = boot_artifacts_verify_files(gdir, STATE_ARTIFACTS, &here_recorded, &here);
    char attr[300];
    snprintf(attr, sizeof(attr), "%s%s", MIG_ATTR_BOOT_PREFIX, g.name);
    char t[32] = "-";
    time_t tt = (time_t)ir.changed;
    struct tm tm;
    if (ir.changed && localtime_r(&tt, &tm))
        strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);

    if (o->json) {
        printf("{\"guest\":");
        json_str(stdout, g.name);
        printf(",\"install\":{\"configured\":%s,\"state\":\"%s\",\"host\":",
               has_install ? "true" : "false", install_state_name(ir.state));
        json_str(stdout, ir.host);
        printf(",\"attempts\":%u,\"changed\":%lld},\"artifacts\":", ir.attempts, ir.changed);
        if (!recorded) {
            printf("null");
        } else {
            printf("{\"kernel\":");
            json_str(stdout, store_kv_get(&rec, "kernel"));
            printf(",\"kernel_sha256\":");
            json_str(stdout, store_kv_get(&rec, "kernel_sha256"));
            printf(",\"initrd\":");
            json_str(stdout, store_kv_get(&rec, "initrd"));
            printf(",\"initrd_sha256\":");
            json_str(stdout, store_kv_get(&rec, "initrd_sha256"));
            printf(",\"signed\":%s}", store_kv_get(&rec, "hmac_sha256") ? "true" : "false");
        }
        printf(",\"hosts\":[");
        for (size_t i = 0; i < v.n; i++) {
            const char *verdict = cluster_node_attr(&v.nodes[i], attr, true);
            printf("%s{\"node\":", i ? "," : "");
            json_str(stdout, v.nodes[i].name);
            printf(",\"check\":");
            verdict ? json_str(stdout, verdict) : (void)printf("null");
            printf("}");
        }
        printf("],\"this_host\":");
        json_str(stdout, here_r < 0 ? here.msg : "ok");
        printf("}\n");
        return VMHA_EXIT_OK;
    }
    printf("guest %s\n", g.name);
    if (has_install || ir.state != INSTALL_NOT_STARTED)
        printf("install: %s%s%s (%u install boot%s, %s)\n", install_state_name(ir.state),
               ir.host[0] ? " on " : "", ir.host, ir.attempts, ir.attempts == 1 ? "" : "s", t);
    else
        printf("install: none configured\n");
    if (!recorded) {
        printf("boot artifacts: none recorded (the guest boots from its disk or firmware, or "
               "has not been defined yet)\n");
        return VMHA_EXIT_OK;
    }
    printf("boot artifacts (%s):\n", store_kv_get(&rec, "hmac_sha256") ? "signed" : "unsigned");
    static const char *const what[] = {"kernel", "initrd"};
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_sha256", what[i]);
        const char *path = store_kv_get(&rec, what[i]), *d = store_kv_get(&rec, key);
        if (path && path[0])
            printf("  %-6s %s\n         sha256 %s\n", what[i], path, d ? d : "-");
    }
    printf("\n%-12s %s\n", "HOST", "ARTIFACTS");
    for (size_t i = 0; i < v.n; i++) {
        const char *verdict = cluster_node_attr(&v.nodes[i], attr, true);
        printf("%-12.12s %s\n", v.nodes[i].name,
               verdict             ? verdict
               : v.nodes[i].online ? "(not published: is ocf:vmha:node running?)"
                                   : "(offline)");
    }
    printf("\nthis host: %s\n", here_r < 0 ? here.msg : "ok");
    return VMHA_EXIT_OK;
}
