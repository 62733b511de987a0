/* Unit tests of migrate/: version parsing and the migration-path policy over a table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "vmha/migrate.h"

static void parse_levels(void **state)
{
    struct mig_level l;
    struct vmha_err e = {0};
    char buf[48];
    assert_int_equal(mig_level_parse("qemu 7.2.0", NULL, &l, &e), 0);
    assert_string_equal(l.family, "qemu");
    assert_int_equal(l.major, 7);
    assert_int_equal(l.minor, 2);
    assert_int_equal(l.micro, 0);
    assert_int_equal(mig_level_parse("xen 4.17", NULL, &l, &e), 0);
    mig_level_format(&l, buf, sizeof(buf));
    assert_string_equal(buf, "xen 4.17.0");
    assert_int_equal(mig_level_parse("8.1.3", "qemu", &l, &e), 0);
    mig_level_format(&l, buf, sizeof(buf));
    assert_string_equal(buf, "qemu 8.1.3");
    assert_int_equal(mig_level_parse("  qemu   10.0 ", NULL, &l, &e), 0);
    assert_int_equal(l.major, 10);
    /* An explicit family wins over the default. */
    assert_int_equal(mig_level_parse("xen 4.18.1", "qemu", &l, &e), 0);
    assert_string_equal(l.family, "xen");
}

static void parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "7",
        "7.",
        ".7",
        "7..2",
        "7.2.0.1",
        "7.2-rc1",
        "v7.2",
        "-7.2",
        "7.2 extra",
        "qemu",
        "qemu ",
        "vmware 7.2",
        "qemu 7,2",
        "qemu 123456.1",
        "qemu 7.2.0.",
        "xen4.17",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mig_level l = {.major = 9};
        struct vmha_err e = {0};
        int r = mig_level_parse(bad[i], "qemu", &l, &e);
        if (r != -EINVAL)
            fail_msg("'%s' parsed (r=%d)", bad[i], r);
        assert_true(e.msg[0] != '\0');
        assert_string_equal(l.family, "");
    }
    struct mig_level l;
    struct vmha_err e = {0};
    assert_int_equal(mig_level_parse("7.2.0", NULL, &l, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "family"));
    assert_int_equal(mig_level_parse(NULL, "qemu", &l, &e), -EINVAL);
}

static void from_caps(void **state)
{
    struct hv_caps c = {.family = "qemu", .hv_version = 7002005};
    struct mig_level l;
    struct vmha_err e = {0};
    assert_int_equal(mig_level_from_caps(&c, &l, &e), 0);
    assert_int_equal(l.major, 7);
    assert_int_equal(l.minor, 2);
    assert_int_equal(l.micro, 5);
    struct hv_caps lxc = {.family = "lxc", .hv_version = 1000};
    assert_int_equal(mig_level_from_caps(&lxc, &l, &e), -EOPNOTSUPP);
    struct hv_caps none = {.family = "xen"};
    assert_int_equal(mig_level_from_caps(&none, &l, &e), -EINVAL);
}

static void list_has(void **state)
{
    assert_true(mig_list_has("pc q35 pc-i440fx-7.2", "pc"));
    assert_true(mig_list_has("pc q35 pc-i440fx-7.2", "pc-i440fx-7.2"));
    assert_true(mig_list_has("pc q35 pc-i440fx-7.2", "q35"));
    assert_false(mig_list_has("pc q35 pc-i440fx-7.2", "pc-i440fx-7"));
    assert_false(mig_list_has("pc-q35-7.2", "q35"));
    assert_false(mig_list_has("", "pc"));
    assert_false(mig_list_has(NULL, "pc"));
    assert_false(mig_list_has("pc", ""));
}

struct policy_case {
    const char *floor; /* NULL = never ran */
    const char *host;  /* NULL = host never published */
    unsigned window;
    const char *machine, *config_machine, *machines;
    bool allowed;
    const char *why_has; /* a phrase the refusal must contain */
};

#define ALL "pc q35 pc-i440fx-7.2 pc-q35-7.2 pc-i440fx-7.1"

static const struct policy_case cases[] = {
    /* QEMU: window in major releases. */
    {"qemu 7.2.0", "qemu 7.2.0", 1, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 7.2.9", 1, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.9", "qemu 7.2.0", 1, NULL, NULL, ALL, true, NULL}, /* stable branch: down ok */
    {"qemu 7.1.0", "qemu 7.2.0", 1, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 8.0.0", 1, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 8.2.1", 1, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 9.0.0", 1, NULL, NULL, ALL, false, "2 major releases above"},
    {"qemu 7.2.0", "qemu 9.0.0", 2, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 8.0.0", 0, NULL, NULL, ALL, false, "migration_window=0"},
    {"qemu 7.2.0", "qemu 7.2.1", 0, NULL, NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 7.1.0", 1, NULL, NULL, ALL, false, "older release"},
    {"qemu 8.0.0", "qemu 7.2.0", 5, NULL, NULL, ALL, false, "below the guest's floor qemu 8.0.0"},
    /* Xen: window in minor releases, no crossing of majors. */
    {"xen 4.17.0", "xen 4.17.3", 1, NULL, NULL, NULL, true, NULL},
    {"xen 4.17.3", "xen 4.17.0", 1, NULL, NULL, NULL, true, NULL},
    {"xen 4.17.0", "xen 4.18.0", 1, NULL, NULL, NULL, true, NULL},
    {"xen 4.17.0", "xen 4.19.0", 1, NULL, NULL, NULL, false, "2 minor releases above"},
    {"xen 4.17.0", "xen 4.19.0", 2, NULL, NULL, NULL, true, NULL},
    {"xen 4.18.0", "xen 4.17.0", 1, NULL, NULL, NULL, false, "older release"},
    {"xen 4.19.0", "xen 5.0.0", 9, NULL, NULL, NULL, false, "major"},
    /* Families never mix. */
    {"qemu 7.2.0", "xen 4.17.0", 1, NULL, NULL, NULL, false, "the guest needs qemu"},
    {"xen 4.17.0", "qemu 7.2.0", 1, NULL, NULL, ALL, false, "the guest needs xen"},
    /* A host that never said: refused, whatever else. */
    {"qemu 7.2.0", NULL, 1, NULL, NULL, ALL, false, "has not published its level"},
    {NULL, NULL, 1, NULL, NULL, ALL, false, "has not published its level"},
    /* Machine types. */
    {"qemu 7.2.0", "qemu 7.2.0", 1, "pc-i440fx-7.2", NULL, ALL, true, NULL},
    {"qemu 7.2.0", "qemu 8.0.0", 1, "pc-i440fx-7.2", NULL, "pc pc-i440fx-8.0", false,
     "lacks machine type pc-i440fx-7.2, which the guest runs with"},
    {"qemu 7.2.0", "qemu 7.2.0", 1, "pc-i440fx-7.2", "q35", "pc pc-i440fx-7.2", false,
     "lacks machine type q35, which the guest is configured for"},
    {"qemu 7.2.0", "qemu 7.2.0", 1, "pc-i440fx-7.2", NULL, NULL, false,
     "has not published its machine types"},
    /* Never ran: any host of the family with the configured machine. */
    {NULL, "qemu 6.2.0", 1, NULL, NULL, ALL, true, NULL},
    {NULL, "qemu 9.0.0", 1, NULL, "pc-q35-7.2", ALL, true, NULL},
    {NULL, "qemu 9.0.0", 1, NULL, "pc-q35-9.0", ALL, false, "lacks machine type pc-q35-9.0"},
};

static void policy_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct policy_case *c = &cases[i];
        struct mig_need need = {
            .window = c->window, .machine = c->machine, .config_machine = c->config_machine};
        struct mig_host host = {.name = "node2", .machines = c->machines};
        struct vmha_err e = {0};
        if (c->floor)
            assert_int_equal(mig_level_parse(c->floor, NULL, &need.floor, &e), 0);
        if (c->host)
            assert_int_equal(mig_level_parse(c->host, NULL, &host.level, &e), 0);
        char why[256];
        bool ok = mig_allowed(&need, &host, why, sizeof(why));
        if (ok != c->allowed)
            fail_msg("case %zu (%s -> %s, window %u): expected %s, got %s: %s", i,
                     c->floor ? c->floor : "-", c->host ? c->host : "-", c->window,
                     c->allowed ? "allowed" : "forbidden", ok ? "allowed" : "forbidden", why);
        if (ok)
            assert_string_equal(why, "");
        if (!ok) {
            assert_non_null(strstr(why, "node2"));
            if (!strstr(why, c->why_has))
                fail_msg("case %zu: '%s' does not say '%s'", i, why, c->why_has);
        }
    }
}

static void family_of_a_fresh_guest(void **state)
{
    struct mig_need need = {.family = "xen", .window = 1};
    struct mig_host host = {.name = "node1", .machines = ALL};
    struct vmha_err e = {0};
    char why[256];
    assert_int_equal(mig_level_parse("qemu 7.2.0", NULL, &host.level, &e), 0);
    assert_false(mig_allowed(&need, &host, why, sizeof(why)));
    assert_non_null(strstr(why, "the guest needs xen"));
}

static void refusal_names_both_levels(void **state)
{
    struct mig_need need = {.window = 1};
    struct mig_host host = {.name = "node3"};
    struct vmha_err e = {0};
    char why[256];
    assert_int_equal(mig_level_parse("qemu 8.0.0", NULL, &need.floor, &e), 0);
    assert_int_equal(mig_level_parse("qemu 7.2.0", NULL, &host.level, &e), 0);
    assert_false(mig_allowed(&need, &host, why, sizeof(why)));
    assert_non_null(strstr(why, "qemu 7.2.0"));
    assert_non_null(strstr(why, "qemu 8.0.0"));
    /* A reason never overflows its buffer. */
    char tiny[8];
    assert_false(mig_allowed(&need, &host, tiny, sizeof(tiny)));
    assert_int_equal(strlen(tiny), 7);
}

static void record_floor_only_rises(void **state)
{
    char dir[] = "/tmp/vmha-migrate-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    struct mig_record rec, needs = {.family = "qemu", .config_machine = "pc", .window = 2};
    assert_int_equal(mig_record_read(dir, "web1", &rec, &e), -ENOENT);
    /* A name from a config must not lead out of state_dir. */
    assert_int_equal(mig_record_register(dir, "../web1", &needs, &dl, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "'../web1' cannot name a directory"));
    assert_int_equal(mig_record_register(dir, "web1", &needs, &dl, &e), 0);
    assert_int_equal(mig_record_read(dir, "web1", &rec, &e), 0);
    assert_string_equal(rec.family, "qemu");
    assert_string_equal(rec.config_machine, "pc");
    assert_int_equal(rec.window, 2);
    assert_string_equal(rec.floor.family, ""); /* never ran */

    struct mig_level l72, l721, l80;
    assert_int_equal(mig_level_parse("qemu 7.2.0", NULL, &l72, &e), 0);
    assert_int_equal(mig_level_parse("qemu 7.2.1", NULL, &l721, &e), 0);
    assert_int_equal(mig_level_parse("qemu 8.0.0", NULL, &l80, &e), 0);
    assert_int_equal(mig_record_raise(dir, "web1", &l721, "pc-i440fx-7.2", "node1", &dl, &rec, &e),
                     0);
    assert_int_equal(mig_level_cmp(&rec.floor, &l721), 0);
    /* Within the branch, down: the floor keeps the higher micro release. */
    assert_int_equal(mig_record_raise(dir, "web1", &l72, "pc-i440fx-7.2", "node2", &dl, &rec, &e),
                     0);
    assert_int_equal(mig_level_cmp(&rec.floor, &l721), 0);
    assert_string_equal(rec.host, "node2");
    assert_int_equal(mig_record_raise(dir, "web1", &l80, "pc-i440fx-7.2", "node3", &dl, &rec, &e),
                     0);
    assert_int_equal(mig_level_cmp(&rec.floor, &l80), 0);
    assert_int_equal(mig_record_raise(dir, "web1", &l72, NULL, "node1", &dl, &rec, &e), 0);
    assert_int_equal(mig_level_cmp(&rec.floor, &l80), 0);
    assert_string_equal(rec.machine, "pc-i440fx-7.2"); /* no machine: keep the last one */
    /* Registering new needs leaves the floor alone. */
    needs.window = 1;
    assert_int_equal(mig_record_register(dir, "web1", &needs, &dl, &e), 0);
    assert_int_equal(mig_record_read(dir, "web1", &rec, &e), 0);
    assert_int_equal(mig_level_cmp(&rec.floor, &l80), 0);
    assert_int_equal(rec.window, 1);
    /* Bad names never reach the file system. */
    assert_int_equal(mig_record_register(dir, "../etc", &needs, &dl, &e), -EINVAL);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void corrupt_record_is_refused(void **state)
{
    char dir[] = "/tmp/vmha-migrate-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/web1", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/web1/floor", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("level=qemu seven\nwindow=1\n", f);
    fclose(f);
    struct mig_record rec;
    struct vmha_err e = {0};
    assert_int_equal(mig_record_read(dir, "web1", &rec, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "floor"));
    /* A raise over a corrupt record fails rather than overwriting it. */
    struct mig_level l;
    struct vmha_deadline dl = vmha_deadline_in(5000);
    assert_int_equal(mig_level_parse("qemu 8.0.0", NULL, &l, &e), 0);
    assert_int_equal(mig_record_raise(dir, "web1", &l, NULL, "node1", &dl, &rec, &e), -EINVAL);
    char cmd[192];
    snprintf(cmd, sizeof(cmd), "grep -q seven '%s'", path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_levels),
        cmocka_unit_test(parse_rejects),
        cmocka_unit_test(from_caps),
        cmocka_unit_test(list_has),
        cmocka_unit_test(policy_table),
        cmocka_unit_test(family_of_a_fresh_guest),
        cmocka_unit_test(refusal_names_both_levels),
        cmocka_unit_test(record_floor_only_rises),
        cmocka_unit_test(corrupt_record_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
