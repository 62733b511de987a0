/* vmha nvram: a guest's UEFI variables as the state store keeps them (or any VARS file),
 * its generations, and export/import. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/nvram.h"

/* The guest's directory in the store (malloc'd in *gdir), from the cluster's configuration. */
static int guest_dir(const char *arg, const struct cli_opts *o, char **gdir, char *name,
                     size_t name_size)
{
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    struct cli_guest g;
    if (cli_open_guest("nvram", arg, o, &v, &g) < 0)
        return -1;
    if (!g.state_dir) {
        fprintf(stderr, "vmha nvram: guest %s has no state_dir: its NVRAM is not kept\n", g.name);
        return -1;
    }
    struct vmha_err e = {0};
    if (store_guest_dir(g.state_dir, g.name, gdir, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s\n", e.msg);
        return -1;
    }
    snprintf(name, name_size, "%s", g.name);
    return 0;
}

static void when(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !localtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "-");
}

static const char *attr_text(uint32_t a, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s", a & 1 ? "NV," : "", a & 2 ? "BS," : "", a & 4 ? "RT," : "",
             a & 0x20 ? "TA," : "");
    size_t n = strlen(buf);
    if (n)
        buf[n - 1] = '\0';
    return buf;
}

/* Whether v is a live boot entry (Boot####, the global GUID). */
static bool boot_entry(const struct nvram_var *v)
{
    unsigned num;
    char tail;
    return v->live && strcmp(v->guid, NVRAM_GLOBAL_GUID) == 0 &&
           sscanf(v->name, "Boot%4X%c", &num, &tail) == 1 && strlen(v->name) == 8;
}

/* What show says, gathered once for both formats. */
struct shown {
    const struct nvram *nv;
    const char *title;
    uint16_t order[128];
    size_t n_order, live;
    int order_r; /* nvram_boot_order's answer: -ENOENT when there is none */
    char order_err[512];
};

static void show_gather(const struct nvram *nv, const char *title, struct shown *s)
{
    struct vmha_err e = {0};
    *s = (struct shown){.nv = nv, .title = title};
    s->order_r = nvram_boot_order(nv, s->order, 128, &s->n_order, &e);
    snprintf(s->order_err, sizeof(s->order_err), "%s", e.msg);
    for (size_t i = 0; i < nv->n; i++)
        s->live += nv->vars[i].live;
}

static void show_json(const struct shown *s)
{
    const struct nvram *nv = s->nv;
    struct cli_json j = {.f = stdout};
    struct vmha_err e = {0};
    char name[16];
    json_open(&j, NULL);
    json_string(&j, "source", s->title);
    json_bool(&j, "authenticated", nv->authenticated);
    json_uint(&j, "records", nv->n);
    json_uint(&j, "live", s->live);
    if (s->order_r < 0) {
        json_null(&j, "boot_order");
    } else {
        json_open_list(&j, "boot_order");
        for (size_t i = 0; i < s->n_order; i++) {
            snprintf(name, sizeof(name), "Boot%04X", s->order[i]);
            json_string(&j, NULL, name);
        }
        json_close(&j, ']');
    }
    json_open_list(&j, "boot_entries");
    for (size_t i = 0; i < nv->n; i++) {
        const struct nvram_var *v = &nv->vars[i];
        if (!boot_entry(v))
            continue;
        struct nvram_load_option lo;
        json_open(&j, NULL);
        json_string(&j, "name", v->name);
        if (nvram_load_option_parse(v->data, v->data_size, &lo, &e) < 0) {
            json_string(&j, "error", e.msg);
        } else {
            json_bool(&j, "active", lo.attributes & NVRAM_LOAD_OPTION_ACTIVE);
            json_string(&j, "description", lo.description);
            json_string(&j, "path", lo.path);
        }
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_open_list(&j, "variables");
    for (size_t i = 0; i < nv->n; i++) {
        const struct nvram_var *v = &nv->vars[i];
        if (!v->live)
            continue;
        json_open(&j, NULL);
        json_string(&j, "name", v->name);
        json_string(&j, "guid", v->guid);
        json_uint(&j, "attributes", v->attributes);
        json_uint(&j, "size", v->data_size);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_close(&j, '}');
}

static void show_text(const struct shown *s)
{
    const struct nvram *nv = s->nv;
    struct vmha_err e = {0};
    printf("%s\n", s->title);
    printf("store: %s, %zu of %zu bytes used, %zu records, %zu live\n",
           nv->authenticated ? "authenticated" : "plain", nv->used, nv->store_size, nv->n, s->live);
    if (s->order_r == -ENOENT) {
        printf("BootOrder: none\n");
    } else if (s->order_r < 0) {
        printf("BootOrder: %s\n", s->order_err);
    } else {
        printf("BootOrder:");
        for (size_t i = 0; i < s->n_order; i++)
            printf("%s%04X", i ? "," : " ", s->order[i]);
        printf("\n");
    }
    for (size_t i = 0; i < nv->n; i++) {
        const struct nvram_var *v = &nv->vars[i];
        if (!boot_entry(v))
            continue;
        struct nvram_load_option lo;
        if (nvram_load_option_parse(v->data, v->data_size, &lo, &e) < 0) {
            printf("%s  (malformed: %s)\n", v->name, e.msg);
            continue;
        }
        printf("%s%c %s\n    %s\n", v->name, lo.attributes & NVRAM_LOAD_OPTION_ACTIVE ? '*' : ' ',
               lo.description, lo.path);
    }
    printf("\n%-20s %-36s %-11s %s\n", "VARIABLE", "GUID", "ATTRIBUTES", "SIZE");
    for (size_t i = 0; i < nv->n; i++) {
        const struct nvram_var *v = &nv->vars[i];
        char a[32];
        if (v->live)
            printf("%-20.20s %-36s %-11s %zu\n", v->name, v->guid,
                   attr_text(v->attributes, a, sizeof(a)), v->data_size);
    }
}

static void show(const struct nvram *nv, const char *title, bool json)
{
    struct shown s;
    show_gather(nv, title, &s);
    if (json)
        show_json(&s);
    else
        show_text(&s);
}

static int parse_generation(int *argc, char **argv, unsigned long *gen)
{
    *gen = 0;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--generation") != 0)
            continue;
        uint64_t v;
        if (i + 1 >= *argc || vmha_parse_uint(argv[i + 1], 999999, &v) < 0 || v == 0) {
            fprintf(stderr, "vmha nvram: --generation needs a generation number\n");
            return -1;
        }
        *gen = (unsigned long)v;
        memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof(*argv));
        *argc -= 2;
        return 0;
    }
    return 0;
}

/* A generation (gen, or the newest intact one) read into buf. */
static int load_generation(const char *gdir, unsigned long gen, uint8_t **buf, size_t *len,
                           struct nvram_gen *g)
{
    struct vmha_err e = {0};
    char note[1024];
    if (gen == 0) {
        if (nvgen_newest_valid(gdir, buf, len, g, note, sizeof(note), &e) < 0) {
            fprintf(stderr, "vmha nvram: %s\n", e.msg);
            return -1;
        }
        if (note[0])
            fprintf(stderr, "vmha nvram: warning: %s\n", note);
        return 0;
    }
    _cleanup_free_ struct nvram_gen *gens = NULL;
    size_t n;
    if (nvgen_list(gdir, &gens, &n, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s\n", e.msg);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (gens[i].num == gen) {
            *g = gens[i];
            if (nvgen_read(gdir, g, buf, len, &e) < 0) {
                fprintf(stderr, "vmha nvram: %s\n", e.msg);
                return -1;
            }
            return 0;
        }
    fprintf(stderr, "vmha nvram: there is no generation %lu\n", gen);
    return -1;
}

static int cmd_show(int argc, char **argv, const struct cli_opts *o)
{
    unsigned long gen;
    if (parse_generation(&argc, argv, &gen) < 0 || argc != 2)
        return cli_usage("nvram", stderr, false);
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    char title[600];
    struct vmha_err e = {0};
    if (strchr(argv[1], '/') || access(argv[1], F_OK) == 0) {
        if (vmha_read_blob(argv[1], 64u << 20, &buf, &len, &e) < 0) {
            fprintf(stderr, "vmha nvram: %s\n", e.msg);
            return VMHA_EXIT_FAILED;
        }
        snprintf(title, sizeof(title), "%s", argv[1]);
    } else {
        _cleanup_free_ char *gdir = NULL;
        char name[256];
        struct nvram_gen g;
        if (guest_dir(argv[1], o, &gdir, name, sizeof(name)) < 0 ||
            load_generation(gdir, gen, &buf, &len, &g) < 0)
            return VMHA_EXIT_FAILED;
        char t[32];
        when(g.time, t, sizeof(t));
        snprintf(title, sizeof(title), "%s: NVRAM generation %lu, captured on %s (%s) at %s", name,
                 g.num, g.host, g.reason, t);
    }
    struct nvram nv;
    if (nvram_parse(buf, len, &nv, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s: %s\n", title, e.msg);
        return VMHA_EXIT_FAILED;
    }
    show(&nv, title, o->json);
    nvram_clear(&nv);
    return VMHA_EXIT_OK;
}

/* A generation as history shows it: whether it still reads back intact. */
struct gen_row {
    const struct nvram_gen *g;
    bool intact;
    char problem[512];
};

static void gen_check(const char *gdir, const struct nvram_gen *g, struct gen_row *row)
{
    uint8_t *buf = NULL;
    size_t len;
    struct vmha_err re = {0};
    *row = (struct gen_row){.g = g};
    row->intact = nvgen_read(gdir, g, &buf, &len, &re) == 0;
    snprintf(row->problem, sizeof(row->problem), "%s", re.msg);
    free(buf);
}

static void history_json(const char *gdir, const char *name, unsigned long booted,
                         const struct nvram_gen *gens, size_t n)
{
    struct cli_json j = {.f = stdout};
    json_open(&j, NULL);
    json_string(&j, "guest", name);
    json_uint(&j, "booted", booted);
    json_open_list(&j, "generations");
    for (size_t i = 0; i < n; i++) {
        struct gen_row row;
        gen_check(gdir, &gens[i], &row);
        json_open(&j, NULL);
        json_uint(&j, "generation", gens[i].num);
        json_uint(&j, "time", (unsigned long long)gens[i].time);
        json_string(&j, "host", gens[i].host);
        json_string(&j, "reason", gens[i].reason);
        json_string(&j, "sha256", gens[i].digest);
        json_bool(&j, "intact", row.intact);
        if (!row.intact)
            json_string(&j, "problem", row.problem);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_close(&j, '}');
}

static void history_text(const char *gdir, unsigned long booted, const struct nvram_gen *gens,
                         size_t n)
{
    printf("%-6s %-19s %-10s %-8s %-9s %s\n", "GEN", "CAPTURED", "HOST", "REASON", "DIGEST",
           "STATE");
    for (size_t i = 0; i < n; i++) {
        struct gen_row row;
        gen_check(gdir, &gens[i], &row);
        char t[32];
        when(gens[i].time, t, sizeof(t));
        printf("%-6lu %-19s %-10.10s %-8s %.8s  %s%s%s\n", gens[i].num, t, gens[i].host,
               gens[i].reason, gens[i].digest, row.intact ? "intact" : "DAMAGED",
               gens[i].num == booted ? ", booted" : "", i + 1 == n ? ", newest" : "");
        if (!row.intact)
            printf("       %s\n", row.problem);
    }
    if (n == 0)
        printf("(no generation captured yet)\n");
}

static int cmd_history(int argc, char **argv, const struct cli_opts *o)
{
    if (argc != 2)
        return cli_usage("nvram", stderr, false);
    _cleanup_free_ char *gdir = NULL;
    char name[256];
    if (guest_dir(argv[1], o, &gdir, name, sizeof(name)) < 0)
        return VMHA_EXIT_FAILED;
    _cleanup_free_ struct nvram_gen *gens = NULL;
    size_t n;
    unsigned long booted = 0;
    struct vmha_err e = {0};
    if (nvgen_list(gdir, &gens, &n, &e) < 0 || nvgen_booted(gdir, &booted, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    if (o->json)
        history_json(gdir, name, booted, gens, n);
    else
        history_text(gdir, booted, gens, n);
    return VMHA_EXIT_OK;
}

static int cmd_export(int argc, char **argv, const struct cli_opts *o)
{
    unsigned long gen;
    if (parse_generation(&argc, argv, &gen) < 0 || argc != 3)
        return cli_usage("nvram", stderr, false);
    _cleanup_free_ char *gdir = NULL;
    char name[256];
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    struct nvram_gen g;
    struct vmha_err e = {0};
    if (guest_dir(argv[1], o, &gdir, name, sizeof(name)) < 0 ||
        load_generation(gdir, gen, &buf, &len, &g) < 0)
        return VMHA_EXIT_FAILED;
    if (nvram_write_file(argv[2], buf, len, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    printf("%s: generation %lu written to %s\n", name, g.num, argv[2]);
    return VMHA_EXIT_OK;
}

static int cmd_import(int argc, char **argv, const struct cli_opts *o)
{
    if (argc != 3)
        return cli_usage("nvram", stderr, false);
    _cleanup_free_ char *gdir = NULL;
    char name[256];
    if (guest_dir(argv[1], o, &gdir, name, sizeof(name)) < 0)
        return VMHA_EXIT_FAILED;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    struct vmha_err e = {0};
    if (vmha_read_blob(argv[2], 64u << 20, &buf, &len, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s\n", e.msg);
        return VMHA_EXIT_FAILED;
    }
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    struct vmha_deadline dl = vmha_deadline_in(o->timeout_ms);
    struct nvram_gen g;
    bool stored;
    if (nvgen_store(gdir, buf, len, host, "import", 1000, &dl, &g, &stored, &e) < 0) {
        fprintf(stderr, "vmha nvram: %s: %s\n", argv[2], e.msg);
        return VMHA_EXIT_FAILED;
    }
    printf(stored ? "%s: %s stored as generation %lu\n"
                  : "%s: %s is already the newest generation (%lu)\n",
           name, argv[2], g.num);
    return VMHA_EXIT_OK;
}

int cmd_nvram(int argc, char **argv, const struct cli_opts *o)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_usage("nvram", argc < 2 ? stderr : stdout, true);
        return argc < 2 ? VMHA_EXIT_USAGE : VMHA_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **, const struct cli_opts *);
    } sub[] = {{"show", cmd_show},
               {"history", cmd_history},
               {"export", cmd_export},
               {"import", cmd_import}};
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
        if (strcmp(argv[1], sub[i].name) == 0)
            return sub[i].run(argc - 1, argv + 1, o);
    fprintf(stderr, "vmha nvram: unknown command '%s'\n", argv[1]);
    cli_usage("nvram", stderr, false);
    return VMHA_EXIT_USAGE;
}
