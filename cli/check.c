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

/* What vmha check GUEST finds, gathered once for both formats. */
struct check_view {
    const struct cli_guest *g;
    const struct cluster_view *v;
    struct verdict config, nvram;  /* shared storage: the same for every host */
    bool policy, boot;             /* whether the policy and boot records apply */
    struct verdict *paths, *boots; /* per host */
};

static bool can_start(const struct check_view *c, size_t i)
{
    return c->v->nodes[i].online && c->config.ok && c->nvram.ok && c->paths[i].ok && c->boots[i].ok;
}

/* The NVRAM a start would restore, and whether boot artifacts are recorded. */
static void check_store(struct check_view *c)
{
    struct vmha_err e = {0};
    const struct cli_guest *g = c->g;
    if (!g->state_dir) {
        snprintf(c->nvram.text, sizeof(c->nvram.text), "not kept (no state_dir)");
        return;
    }
    char note[1024] = "";
    _cleanup_free_ char *gdir = NULL;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    struct nvram_gen gen;
    int r = store_guest_dir(g->state_dir, g->name, &gdir, &e);
    if (r == 0)
        r = nvgen_newest_valid(gdir, &buf, &len, &gen, note, sizeof(note), &e);
    if (r == -ENOENT && !note[0]) {
        snprintf(c->nvram.text, sizeof(c->nvram.text), "none kept yet");
    } else if (r < 0) {
        c->nvram.ok = false;
        snprintf(c->nvram.text, sizeof(c->nvram.text), "%s", e.msg);
    } else {
        snprintf(c->nvram.text, sizeof(c->nvram.text), "generation %lu%s", gen.num,
                 note[0] ? " (newer damaged)" : "");
    }
    c->policy = g->policy;
    struct store_kv kv = {0};
    c->boot = gdir && store_read(gdir, STATE_ARTIFACTS, &kv, &e) == 0;
    store_kv_clear(&kv);
}

/* Each host's verdicts, as its ocf:vmha:node publishes them. */
static size_t check_hosts(struct check_view *c)
{
    size_t possible = 0;
    const struct cluster_view *v = c->v;
    for (size_t i = 0; i < v->n; i++) {
        if (c->policy)
            from_attr(&v->nodes[i], MIG_ATTR_PATH_PREFIX, c->g->name,
                      "no verdict (is ocf:vmha:node running there?)", &c->paths[i]);
        else
            c->paths[i] = (struct verdict){true, "not enforced"};
        if (c->boot)
            from_attr(&v->nodes[i], MIG_ATTR_BOOT_PREFIX, c->g->name,
                      "not checked (is ocf:vmha:node running there?)", &c->boots[i]);
        else
            c->boots[i] = (struct verdict){true, "nothing recorded"};
        possible += can_start(c, i);
    }
    return possible;
}

static void check_json(const struct check_view *c)
{
    struct cli_json j = {.f = stdout};
    json_open(&j, NULL);
    json_string(&j, "guest", c->g->name);
    json_string(&j, "config", c->config.text);
    json_string(&j, "nvram", c->nvram.text);
    json_open_list(&j, "hosts");
    for (size_t i = 0; i < c->v->n; i++) {
        json_open(&j, NULL);
        json_string(&j, "node", c->v->nodes[i].name);
        json_bool(&j, "can_start", can_start(c, i));
        json_string(&j, "policy", c->paths[i].text);
        json_string(&j, "boot_artifacts", c->boots[i].text);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_close(&j, '}');
}

static void check_text(const struct check_view *c)
{
    const struct cluster_view *v = c->v;
    printf("guest %s\nconfig: %s\nnvram:  %s\n\n", c->g->name, c->config.text, c->nvram.text);
    printf("%-12s %-5s %-10s %s\n", "HOST", "START", "POLICY", "BOOT ARTIFACTS");
    for (size_t i = 0; i < v->n; i++)
        printf("%-12.12s %-5s %-10s %s\n", v->nodes[i].name, can_start(c, i) ? "yes" : "NO",
               c->paths[i].ok ? (c->policy ? "ok" : "-") : "refused",
               c->boots[i].ok ? (c->boot ? "ok" : "-") : "MISMATCH");
    bool header = false;
    for (size_t i = 0; i < v->n; i++) {
        if (c->paths[i].ok && c->boots[i].ok)
            continue;
        if (!header)
            printf("\nwhy not:\n");
        header = true;
        if (!c->paths[i].ok)
            printf("  %s: %s\n", v->nodes[i].name, c->paths[i].text);
        if (!c->boots[i].ok && strcmp(c->boots[i].text, c->paths[i].text) != 0)
            printf("  %s: %s\n", v->nodes[i].name, c->boots[i].text);
    }
}

int cmd_check(int argc, char **argv, const struct cli_opts *o)
{
    if (argc != 2 || cli_wants_help(argc, argv))
        return cli_usage("check", argc == 2 ? stdout : stderr, argc == 2);
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cli_guest g;
    if (cli_open_guest("check", argv[1], o, &v, &g) < 0)
        return VMHA_EXIT_FAILED;
    struct check_view c = {.g = &g, .v = &v, .config = {true, "ok"}, .nvram = {true, "ok"}};
    if (g.problem[0]) {
        c.config.ok = false;
        snprintf(c.config.text, sizeof(c.config.text), "%s", g.problem);
    }
    check_store(&c);
    _cleanup_free_ struct verdict *paths = calloc(v.n ? v.n : 1, sizeof(*paths));
    _cleanup_free_ struct verdict *boots = calloc(v.n ? v.n : 1, sizeof(*boots));
    if (!paths || !boots)
        return VMHA_EXIT_FAILED;
    c.paths = paths;
    c.boots = boots;
    size_t possible = check_hosts(&c);
    if (o->json)
        check_json(&c);
    else
        check_text(&c);
    return possible ? VMHA_EXIT_OK : VMHA_EXIT_FAILED;
}
