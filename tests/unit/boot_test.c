/* Unit tests of boot/artifacts.c: recording and checking direct-kernel-boot digests, their
 * HMAC under a cluster key, and the install state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmha/boot.h"

static char dir[64], kernel[128], initrd[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/vmha-boot-test.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
    snprintf(initrd, sizeof(initrd), "%s/initrd.img", dir);
    write_file(kernel, "kernel v1");
    write_file(initrd, "initrd v1");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void digests(void **state)
{
    char d[65];
    struct vmha_err e = {0};
    assert_int_equal(boot_file_sha256(kernel, d, &e), 0);
    /* sha256("kernel v1") */
    FILE *p = popen("printf 'kernel v1' | sha256sum | cut -d' ' -f1", "r");
    char want[80] = "";
    assert_non_null(fgets(want, sizeof(want), p));
    pclose(p);
    want[strcspn(want, "\n")] = '\0';
    assert_string_equal(d, want);
    assert_int_equal(boot_file_sha256("/nonexistent/vmlinuz", d, &e), -ENOENT);
}

static void record_then_check(void **state)
{
    char g[128];
    snprintf(g, sizeof(g), "%s/web1", dir);
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd, .cmdline = "console=ttyS0"};
    struct vmha_err e = {0};
    /* Without recording, nothing to compare with: fine. */
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, false, &e), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, true, &e), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, true, &e), 0);
    /* The kernel changes on this host. */
    write_file(kernel, "kernel v2");
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, true, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, kernel));
    assert_non_null(strstr(e.msg, "on this host, the recorded digest is"));
    write_file(kernel, "kernel v1");
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, true, &e), 0);
    /* Another command line, another kernel path. */
    struct boot_artifacts b = a;
    b.cmdline = "console=ttyS0 init=/bin/sh";
    assert_int_equal(boot_artifacts_check(g, "artifacts", &b, NULL, NULL, NULL, 0, true, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, "command line"));
    b = a;
    b.kernel = initrd;
    assert_int_equal(boot_artifacts_check(g, "artifacts", &b, NULL, NULL, NULL, 0, true, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, "was recorded"));
    /* A guest that boots from its disk has nothing to check. */
    struct boot_artifacts none = {0};
    assert_int_equal(boot_artifacts_check(g, "other", &none, NULL, NULL, NULL, 0, true, &e), 0);
}

static void pinned_digests(void **state)
{
    char g[128], d[65];
    snprintf(g, sizeof(g), "%s/web2", dir);
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd};
    struct vmha_err e = {0};
    assert_int_equal(boot_file_sha256(kernel, d, &e), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, d, NULL, NULL, 0, false, &e), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a,
                                          "0000000000000000000000000000000000000000000000000000000000000000",
                                          NULL, NULL, 0, false, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, "kernel_sha256 parameter"));
}

static void hmac(void **state)
{
    char g[128], path[160];
    snprintf(g, sizeof(g), "%s/web3", dir);
    snprintf(path, sizeof(path), "%s/artifacts", g);
    const uint8_t key[] = "cluster secret";
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd, .cmdline = "quiet"};
    struct vmha_err e = {0};
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, key, sizeof(key), true,
                                          &e), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, key, sizeof(key), true,
                                          &e), 0);
    /* Another key does not verify. */
    const uint8_t other[] = "another secret";
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, other, sizeof(other),
                                          true, &e), -EPERM);
    /* Someone swaps kernel and record together, without the key. */
    write_file(kernel, "evil kernel");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sed -i \"s/^kernel_sha256=.*/kernel_sha256=$(sha256sum '%s' | "
                               "cut -d' ' -f1)/\" '%s'", kernel, path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, key, sizeof(key), true,
                                          &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed correctly"));
    /* Without the key the swap would have passed: that is what the key is for. */
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, NULL, 0, true, &e), 0);
    /* An unsigned record is not trusted once a key is configured. */
    snprintf(cmd, sizeof(cmd), "sed -i '/^hmac_sha256=/d' '%s'", path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(boot_artifacts_check(g, "artifacts", &a, NULL, NULL, key, sizeof(key), true,
                                          &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed"));
    write_file(kernel, "kernel v1");
}

static void install_states(void **state)
{
    char g[128], path[160];
    snprintf(g, sizeof(g), "%s/web4", dir);
    struct install_record r;
    struct vmha_err e = {0};
    assert_int_equal(install_read(g, &r, &e), 0);
    assert_int_equal(r.state, INSTALL_NOT_STARTED);
    r = (struct install_record){.state = INSTALL_RUNNING, .host = "node1", .attempts = 1};
    assert_int_equal(install_write(g, &r, &e), 0);
    assert_int_equal(install_read(g, &r, &e), 0);
    assert_int_equal(r.state, INSTALL_RUNNING);
    assert_string_equal(r.host, "node1");
    assert_int_equal(r.attempts, 1);
    assert_true(r.changed > 0);
    r.state = INSTALL_DONE;
    assert_int_equal(install_write(g, &r, &e), 0);
    assert_int_equal(install_read(g, &r, &e), 0);
    assert_int_equal(r.state, INSTALL_DONE);
    assert_string_equal(install_state_name(r.state), "done");
    snprintf(path, sizeof(path), "%s/install", g);
    write_file(path, "state=bogus\n");
    assert_int_equal(install_read(g, &r, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "unknown state 'bogus'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digests),        cmocka_unit_test(record_then_check),
        cmocka_unit_test(pinned_digests), cmocka_unit_test(hmac),
        cmocka_unit_test(install_states),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
