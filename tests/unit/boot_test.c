/* Unit tests of boot/artifacts.c: recording and checking direct-kernel-boot digests, their
 * HMAC under a cluster key, and the install state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* An unsigned record of guest in g (g's last path component). */
static struct boot_record_ref unsigned_ref(const char *g, const char *name)
{
    return (struct boot_record_ref){.gdir = g, .guest = strrchr(g, '/') + 1, .name = name};
}

static void record_then_check(void **state)
{
    char g[128];
    snprintf(g, sizeof(g), "%s/web1", dir);
    const struct boot_record_ref ref = unsigned_ref(g, "artifacts");
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd, .cmdline = "console=ttyS0"};
    struct vmha_err e = {0};
    /* Without recording, nothing to compare with: fine. */
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e), 0);
    /* The kernel changes on this host. */
    write_file(kernel, "kernel v2");
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, kernel));
    assert_non_null(strstr(e.msg, "on this host, the recorded digest is"));
    write_file(kernel, "kernel v1");
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e), 0);
    /* Another command line, another kernel path. */
    struct boot_artifacts b = a;
    b.cmdline = "console=ttyS0 init=/bin/sh";
    assert_int_equal(boot_artifacts_check(&ref, &b, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, "command line"));
    b = a;
    b.kernel = initrd;
    assert_int_equal(boot_artifacts_check(&ref, &b, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e),
                     -EBADMSG);
    assert_non_null(strstr(e.msg, "was recorded"));
    /* The operator records the new command line; without a key the record is unsigned. */
    b = a;
    b.cmdline = "console=ttyS0 quiet";
    assert_int_equal(boot_artifacts_record(&ref, &b, NULL, NULL, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &b, NULL, NULL, 0, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EBADMSG);
    /* A guest that boots from its disk has nothing to check, nor to record. */
    struct boot_artifacts none = {0};
    const struct boot_record_ref other = unsigned_ref(g, "other");
    assert_int_equal(boot_artifacts_check(&other, &none, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e), 0);
    assert_int_equal(boot_artifacts_record(&other, &none, NULL, NULL, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "boots no kernel directly"));
}

static void pinned_digests(void **state)
{
    char g[128], d[65];
    snprintf(g, sizeof(g), "%s/web2", dir);
    const struct boot_record_ref ref = unsigned_ref(g, "artifacts");
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd};
    struct vmha_err e = {0};
    assert_int_equal(boot_file_sha256(kernel, d, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, d, NULL, 0, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, zeros, NULL, 0, &e), -EBADMSG);
    assert_non_null(strstr(e.msg, "kernel_sha256 parameter"));
    /* The operator cannot record a kernel its own pinned digest contradicts. */
    assert_int_equal(boot_artifacts_record(&ref, &a, zeros, NULL, &e), -EBADMSG);
    assert_int_equal(boot_artifacts_record(&ref, &a, NULL, zeros, &e), -EBADMSG);
    assert_non_null(strstr(e.msg, "initrd_sha256 parameter"));
}

__attribute__((format(printf, 1, 2))) static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

static uint8_t key_bytes[] = "cluster secret, 32 bytes long...";
static const struct boot_key key = {.bytes = key_bytes, .len = sizeof(key_bytes) - 1};

static void hmac(void **state)
{
    char g[128], path[160];
    snprintf(g, sizeof(g), "%s/web3", dir);
    snprintf(path, sizeof(path), "%s/artifacts", g);
    const struct boot_record_ref ref = {
        .gdir = g, .guest = "web3", .name = "artifacts", .key = &key};
    struct boot_artifacts a = {.kernel = kernel, .initrd = initrd, .cmdline = "quiet"};
    struct vmha_err e = {0};
    /* With a key, a start never records: whoever deleted the record would pick the kernel. */
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e),
                     -ENODATA);
    assert_non_null(strstr(e.msg, "no signed record of guest web3's boot artifacts"));
    assert_int_equal(access(path, F_OK), -1);
    /* The operator records; then every check verifies. */
    assert_int_equal(boot_artifacts_record(&ref, &a, NULL, NULL, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e), 0);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), 0);
    run("cp '%s' '%s.good'", path, path);
    /* Another key does not verify. */
    uint8_t other_bytes[] = "another secret, 32 bytes long...";
    const struct boot_key other = {.bytes = other_bytes, .len = sizeof(other_bytes) - 1};
    struct boot_record_ref wrong = ref;
    wrong.key = &other;
    assert_int_equal(boot_artifacts_check(&wrong, &a, NULL, NULL, 0, &e), -EPERM);
    /* The signed record replayed for another guest, or as another record, does not verify. */
    char g5[128];
    snprintf(g5, sizeof(g5), "%s/web5", dir);
    run("mkdir -p '%s' && cp '%s' '%s/artifacts' && cp '%s' '%s/install-artifacts'", g5, path, g5,
        path, g);
    struct boot_record_ref replay = ref;
    replay.gdir = g5;
    replay.guest = "web5";
    assert_int_equal(boot_artifacts_check(&replay, &a, NULL, NULL, 0, &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed correctly for guest web5"));
    replay = ref;
    replay.name = "install-artifacts";
    assert_int_equal(boot_artifacts_check(&replay, &a, NULL, NULL, 0, &e), -EPERM);
    /* Someone swaps kernel and record together, without the key. */
    write_file(kernel, "evil kernel");
    run("sed -i \"s/^kernel_sha256=.*/kernel_sha256=$(sha256sum '%s' | cut -d' ' -f1)/\" '%s'",
        kernel, path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed correctly"));
    /* Without the key the swap would have passed: that is what the key is for. */
    const struct boot_record_ref bare = unsigned_ref(g, "artifacts");
    assert_int_equal(boot_artifacts_check(&bare, &a, NULL, NULL, 0, &e), 0);
    /* A MAC of another length, or one digit off, is refused. */
    write_file(kernel, "kernel v1");
    run("sed 's/^hmac_sha256=.*/hmac_sha256=00/' '%s.good' >'%s'", path, path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EPERM);
    run("sed -E 's/^(hmac_sha256=.{63})./\\1x/' '%s.good' >'%s'", path, path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed correctly"));
    run("cp '%s.good' '%s'", path, path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), 0);
    /* An unsigned record is not trusted once a key is configured. */
    run("sed -i '/^hmac_sha256=/d' '%s'", path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EPERM);
    assert_non_null(strstr(e.msg, "not signed"));
    /* Nor one of format 1 (its MAC did not name the guest). */
    run("sed 's/^format=.*/format=1/' '%s.good' >'%s'", path, path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, 0, &e), -EPERM);
    assert_non_null(strstr(e.msg, "older format"));
    /* Deleting the record does not make the next start sign the evil kernel. */
    write_file(kernel, "evil kernel");
    run("rm '%s'", path);
    assert_int_equal(boot_artifacts_check(&ref, &a, NULL, NULL, BOOT_RECORD_IF_ABSENT, &e),
                     -ENODATA);
    assert_int_equal(access(path, F_OK), -1);
    write_file(kernel, "kernel v1");
}

static void key_file(void **state)
{
    char path[160], link[170];
    snprintf(path, sizeof(path), "%s/artifact.key", dir);
    snprintf(link, sizeof(link), "%s/link.key", dir);
    struct boot_key k = {0};
    struct vmha_err e = {0};
    assert_int_equal(boot_key_load(path, &k, &e), -ENOENT);
    write_file(path, "0123456789abcdef0123456789abcdef");
    run("chmod 0600 '%s'", path);
    assert_int_equal(boot_key_load(path, &k, &e), 0);
    assert_int_equal(k.len, 32);
    assert_memory_equal(k.bytes, "0123456789abcdef", 16);
    boot_key_clear(&k);
    assert_null(k.bytes);
    run("chmod 0640 '%s'", path);
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    assert_non_null(strstr(e.msg, "group or others"));
    assert_non_null(strstr(e.msg, "mode 0640"));
    run("chmod 0604 '%s'", path);
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    run("chmod 0600 '%s' && ln -s '%s' '%s'", path, path, link);
    assert_int_equal(boot_key_load(link, &k, &e), -ELOOP);
    assert_non_null(strstr(e.msg, "symbolic link"));
    write_file(path, "");
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    assert_non_null(strstr(e.msg, "is empty"));
    write_file(path, "short");
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    assert_non_null(strstr(e.msg, "too short"));
    /* A FIFO is refused at once, not waited on; so is a directory. */
    run("rm '%s' && mkfifo -m 0600 '%s'", path, path);
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    assert_non_null(strstr(e.msg, "not a regular file"));
    run("rm '%s' && mkdir -m 0700 '%s'", path, path);
    assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
    run("rmdir '%s'", path);
    if (geteuid() == 0) {
        write_file(path, "0123456789abcdef0123456789abcdef");
        run("chmod 0600 '%s' && chown 65534 '%s'", path, path);
        assert_int_equal(boot_key_load(path, &k, &e), -EPERM);
        assert_non_null(strstr(e.msg, "another user than root"));
    }
    assert_null(k.bytes);
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
        cmocka_unit_test(key_file),       cmocka_unit_test(install_states),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
