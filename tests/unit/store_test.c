/* Unit tests of the state store in boot/: key=value files, atomic and exclusive writes,
 * permissions, the lock. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmha/boot.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/vmha-store-test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void kv_roundtrip(void **state)
{
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_kv_parse("level=qemu 7.2.0\nmachine=pc-i440fx-7.2\n\nhost=node1", &kv,
                                    &e),
                     0);
    assert_int_equal(kv.n, 3);
    assert_string_equal(store_kv_get(&kv, "level"), "qemu 7.2.0");
    assert_string_equal(store_kv_get(&kv, "host"), "node1");
    assert_null(store_kv_get(&kv, "nope"));
    assert_int_equal(store_kv_set(&kv, "host", "node2"), 0);
    assert_string_equal(store_kv_get(&kv, "host"), "node2");
    assert_int_equal(kv.n, 3);
    assert_int_equal(store_kv_set(&kv, "bad key", "x"), -EINVAL);
    assert_int_equal(store_kv_set(&kv, "k", "two\nlines"), -EINVAL);
    store_kv_clear(&kv);
    assert_int_equal(store_kv_parse("no equals sign\n", &kv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "line 1"));
    assert_int_equal(store_kv_parse("a=1\nB=2\n", &kv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "line 2"));
    assert_int_equal(store_kv_parse("=1\n", &kv, &e), -EINVAL);
    assert_int_equal(kv.n, 0);
}

static void names(void **state)
{
    assert_true(store_name_ok("web1"));
    assert_true(store_name_ok("db-2.example_3"));
    assert_false(store_name_ok(""));
    assert_false(store_name_ok(NULL));
    assert_false(store_name_ok("."));
    assert_false(store_name_ok(".."));
    assert_false(store_name_ok("../etc"));
    assert_false(store_name_ok("a/b"));
    assert_false(store_name_ok("a b"));
}

static void write_read_atomic(void **state)
{
    char gdir[128];
    snprintf(gdir, sizeof(gdir), "%s/guests/web1", dir);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_read(gdir, "floor", &kv, &e), -ENOENT);
    assert_int_equal(store_kv_set(&kv, "level", "qemu 7.2.0"), 0);
    assert_int_equal(store_write(gdir, "floor", &kv, false, &e), 0);
    store_kv_clear(&kv);

    struct stat st;
    char path[192];
    snprintf(path, sizeof(path), "%s/floor", gdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(gdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(store_read(gdir, "floor", &kv, &e), 0);
    assert_string_equal(store_kv_get(&kv, "level"), "qemu 7.2.0");
    assert_int_equal(store_kv_set(&kv, "level", "qemu 8.0.0"), 0);
    assert_int_equal(store_write(gdir, "floor", &kv, false, &e), 0);
    store_kv_clear(&kv);
    assert_int_equal(store_read(gdir, "floor", &kv, &e), 0);
    assert_string_equal(store_kv_get(&kv, "level"), "qemu 8.0.0");

    /* Exclusive: never replaces, and leaves no temp file behind. */
    struct store_kv other = {0};
    assert_int_equal(store_kv_set(&other, "level", "qemu 1.0.0"), 0);
    assert_int_equal(store_write(gdir, "floor", &other, true, &e), -EEXIST);
    store_kv_clear(&kv);
    assert_int_equal(store_read(gdir, "floor", &kv, &e), 0);
    assert_string_equal(store_kv_get(&kv, "level"), "qemu 8.0.0");
    assert_int_equal(store_write(gdir, "fresh", &other, true, &e), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep tmp)\"", gdir);
    assert_int_equal(system(cmd), 0);
    store_kv_clear(&kv);
    store_kv_clear(&other);
}

static void corrupt_file_is_an_error(void **state)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/broken", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("level=qemu 7.2.0\ngarbage\n", f);
    fclose(f);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_read(dir, "broken", &kv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "broken"));
    assert_non_null(strstr(e.msg, "line 2"));
}

static void lock_excludes_and_times_out(void **state)
{
    struct vmha_err e = {0};
    int fd = -1;
    struct vmha_deadline dl = vmha_deadline_in(1000);
    assert_int_equal(store_lock(dir, &dl, &fd, &e), 0);
    /* fcntl locks are per process: contend from a child. */
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = -1;
        struct vmha_err ce = {0};
        struct vmha_deadline cdl = vmha_deadline_in(300);
        int r = store_lock(dir, &cdl, &cfd, &ce);
        _exit(r == -ETIMEDOUT ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    store_unlock(fd);
    pid = fork();
    if (pid == 0) {
        int cfd = -1;
        struct vmha_err ce = {0};
        struct vmha_deadline cdl = vmha_deadline_in(300);
        _exit(store_lock(dir, &cdl, &cfd, &ce) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_roundtrip),
        cmocka_unit_test(names),
        cmocka_unit_test(write_read_atomic),
        cmocka_unit_test(corrupt_file_is_an_error),
        cmocka_unit_test(lock_excludes_and_times_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
