/* vmha check GUEST: on every host, whether the guest could start there, as a table. Each
 * host's own checks come from what its ocf:vmha:node clone publishes (migration policy,
 * boot artifacts); what lives on shared storage (config, NVRAM) is checked from here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/migrate.h"
#include "vmha/nvram.h"

struct verdict {
    bool ok;
    char text[700];
};

static void from_attr(const struct cluster_node *n, const char *prefix, const char *guest,
                      const char *unpublished, struct verdict *v)
{
    char attr[300];
    snprintf(attr, sizeof(attr), "%s%s", prefix, guest);
    const char *val = cluster_node_attr(n, attr, true);
    if (!n->online) {
        *v = (struct verdict){false, "host offline"};
    } else if (!val) {
        v->ok = false;
        snprintf(v->text, sizeof(v->text), "%s", unpublished);
    } else {
        v->ok = strcmp(val, MIG_VERDICT_OK) == 0;
        snprintf(v->text, sizeof(v->text), "%s", v->ok ? "ok" : val);
    }
}

int cmd_check(int argc, char **argv, const struct cli_opts *o)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: vmha [--json] check GUEST\n\n"
               "On every host, whether the guest could start there: its config readable,\n"
               "the migration policy allows the host, its kernel and initrd match the\n"
               "recorded digests, its NVRAM can be restored. Exit status 0 when at least\n"
               "one host could start it, 1 otherwise.\n");
        return argc == 2 ? VMHA_EXIT_OK : VMHA_EXIT_USAGE;
    }
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct vmha_err e = {0};
    struct cli_guest g;
    if (cli_open_guest("check", argv[1], o, &v, &g) < 0)
        return VMHA_EXIT_FAILED;
    /* Shared storage, the same for every host. */
    struct verdict config = {true, "ok"}, nvram = {true, "ok"};
    if (g.problem[0]) {
        config.ok = false;
        snprintf(config.text, sizeof(config.text), "%s", g.problem);
    }
    bool policy = false, boot = false;
    if (g.state_dir) {
        char note[1024] = "";
        _cleanup_free_ char *gdir = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        struct nvram_gen gen;
        int r = store_guest_dir(g.state_dir, g.name, &gdir, &e);
        if (r == 0)
            r = nvgen_newest_valid(gdir, &buf, &len, &gen, note, sizeof(note), &e);
        if (r == -ENOENT && !note[0])
            snprintf(nvram.text, sizeof(nvram.text), "none kept yet");
        else if (r < 0)
            nvram = (struct verdict){false, ""},
            snprintf(nvram.text, sizeof(nvram.text), "%s", e.msg);
        else
            snprintf(nvram.text, sizeof(nvram.text), "generation %lu%s", gen.num,
                     note[0] ? " (newer damaged)" : "");
        policy = g.policy;
        struct store_kv kv = {0};
        boot = gdir && store_read(gdir, STATE_ARTIFACTS, &kv, &e) == 0;
        store_kv_clear(&kv);
    } else {
        snprintf(nvram.text, sizeof(nvram.text), "not kept (no state_dir)");
    }
    _cleanup_free_ struct verdict *paths = calloc(v.n ? v.n : 1, sizeof(*paths));
    _cleanup_free_ struct verdict *boots = calloc(v.n ? v.n : 1, sizeof(*boots));
    if (!paths || !boots)
        return VMHA_EXIT_FAILED;
    size_t possible = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (policy)
            from_attr(&v.nodes[i], MIG_ATTR_PATH_PREFIX, g.name,
                      "no verdict (is ocf:vmha:node running there?)", &paths[i]);
        else
            paths[i] = (struct verdict){true, "not enforced"};
        if (boot)
            from_attr(&v.nodes[i], MIG_ATTR_BOOT_PREFIX, g.name,
                      "not checked (is ocf:vmha:node running there?)", &boots[i]);
        else
            boots[i] = (struct verdict){true, "nothing recorded"};
        if (v.nodes[i].online && config.ok && nvram.ok && paths[i].ok && boots[i].ok)
            possible++;
    }
    if (o->json) {
        printf("{\"guest\":");
        json_str(stdout, g.name);
        printf(",\"config\":");
        json_str(stdout, config.text);
        printf(",\"nvram\":");
        json_str(stdout, nvram.text);
        printf(",\"hosts\":[");
        for (size_t i = 0; i < v.n; i++) {
            bool can = v.nodes[i].online && config.ok && nvram.ok && paths[i].ok && boots[i].ok;
            printf("%s{\"node\":", i ? "," : "");
            json_str(stdout, v.nodes[i].name);
            printf(",\"can_start\":%s,\"policy\":", can ? "true" : "false");
            json_str(stdout, paths[i].text);
            printf(",\"boot_artifacts\":");
            json_str(stdout, boots[i].text);
            printf("}");
        }
        printf("]}\n");
        return possible ? VMHA_EXIT_OK : VMHA_EXIT_FAILED;
    }
    printf("guest %s\nconfig: %s\nnvram:  %s\n\n", g.name, config.text, nvram.text);
    printf("%-12s %-5s %-10s %s\n", "HOST", "START", "POLICY", "BOOT ARTIFACTS");
    for (size_t i = 0; i < v.n; i++) {
        bool can = v.nodes[i].online && config.ok && nvram.ok && paths[i].ok && boots[i].ok;
        printf("%-12.12s %-5s %-10s %s\n", v.nodes[i].name, can ? "yes" : "NO",
               paths[i].ok ? (policy ? "ok" : "-") : "refused",
               boots[i].ok ? (boot ? "ok" : "-") : "MISMATCH");
    }
    bool header = false;
    for (size_t i = 0; i < v.n; i++) {
        if (paths[i].ok && boots[i].ok)
            continue;
        if (!header)
            printf("\nwhy not:\n");
        header = true;
        if (!paths[i].ok)
            printf("  %s: %s\n", v.nodes[i].name, paths[i].text);
        if (!boots[i].ok && strcmp(boots[i].text, paths[i].text) != 0)
            printf("  %s: %s\n", v.nodes[i].name, boots[i].text);
    }
    return possible ? VMHA_EXIT_OK : VMHA_EXIT_FAILED;
}
