/* vmha boot GUEST: the guest's install state and its boot artifacts, checked per host (as
 * each node's ocf:vmha:node clone publishes it) and on this host directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/migrate.h"

int cmd_boot(int argc, char **argv, const struct cli_opts *o)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: vmha [--json] boot GUEST\n\n"
               "The guest's install state (not-started, running, done: where and after how\n"
               "many install boots) and its recorded boot artifacts (kernel, initrd), with\n"
               "whether each host's copies match them.\n");
        return argc == 2 ? VMHA_EXIT_OK : VMHA_EXIT_USAGE;
    }
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct cli_guest g;
    if (cli_open_guest("boot", argv[1], o, &v, &g) < 0)
        return VMHA_EXIT_FAILED;
    if (!g.state_dir) {
        fprintf(stderr, "vmha boot: guest %s has no state_dir: nothing is recorded\n", g.name);
        return VMHA_EXIT_FAILED;
    }
    char gdir[4400];
    snprintf(gdir, sizeof(gdir), "%s/%s", g.state_dir, g.name);
    struct install_record ir;
    if (install_read(gdir, &ir, &e) < 0) {
        fprintf(stderr, "vmha boot: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    const char *install = cluster_rsc_param(g.rsc, "install_config");
    bool has_install = install && install[0];
    static const char *const shorthand[] = {"install_kernel", "install_initrd",
                                            "install_cmdline", "install_media"};
    for (size_t i = 0; i < 4; i++) {
        const char *s = cluster_rsc_param(g.rsc, shorthand[i]);
        has_install |= s && s[0];
    }
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    bool recorded = store_read(gdir, "artifacts", &rec, &e) == 0;
    bool here_recorded = false;
    struct vmha_err here = {0};
    int here_r = boot_artifacts_verify_files(gdir, "artifacts", &here_recorded, &here);
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
               verdict ? verdict : v.nodes[i].online ? "(not published: is ocf:vmha:node running?)"
                                                     : "(offline)");
    }
    printf("\nthis host: %s\n", here_r < 0 ? here.msg : "ok");
    return VMHA_EXIT_OK;
}
