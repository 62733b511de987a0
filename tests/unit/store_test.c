/* Unit tests of the state store in boot/: key=value files, atomic and exclusive writes,
 * permissions, the lock, and what it refuses to follow or trust. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "vmha/state.h"

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
    assert_int_equal(
        store_kv_parse("level=qemu 7.2.0\nmachine=pc-i440fx-7.2\n\nhost=node1", &kv, &e), 0);
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
    /* Found by fuzzing: thousands of distinct keys made each parse quadratic (a 256 KiB
     * record took 2 s). 512 keys are a record; one more is refused. */
    char *many = malloc(513 * 16);
    assert_non_null(many);
    size_t len = 0;
    for (int i = 0; i < 513; i++)
        len += (size_t)sprintf(many + len, "k%d=v\n", i);
    assert_int_equal(store_kv_parse(many, &kv, &e), -E2BIG);
    assert_non_null(strstr(e.msg, "more than 512 keys"));
    assert_int_equal(kv.n, 0);
    many[len - strlen("k512=v\n")] = '\0';
    assert_int_equal(store_kv_parse(many, &kv, &e), 0);
    assert_int_equal(kv.n, 512);
    store_kv_clear(&kv);
    free(many);
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

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void assert_file_is(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static void symlinked_guest_dir_refused(void **state)
{
    char target[128], gdir[128], victim[160];
    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(victim, sizeof(victim), "%s/floor", target);
    write_file(victim, "level=qemu 1.0.0\n");
    snprintf(gdir, sizeof(gdir), "%s/web1", dir);
    assert_int_equal(symlink(target, gdir), 0);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_read(gdir, "floor", &kv, &e), -ELOOP);
    assert_non_null(strstr(e.msg, "web1 is a symbolic link: the state store follows none"));
    assert_int_equal(store_kv_set(&kv, "level", "qemu 9.0.0"), 0);
    assert_int_equal(store_write(gdir, "floor", &kv, false, &e), -ELOOP);
    int fd = -1;
    struct vmha_deadline dl = vmha_deadline_in(1000);
    assert_int_equal(store_lock(gdir, &dl, &fd, &e), -ELOOP);
    /* A link further up the guest's directory counts the same. */
    char deeper[160];
    snprintf(deeper, sizeof(deeper), "%s/nvram", gdir);
    assert_int_equal(store_write(deeper, "booted", &kv, false, &e), -ELOOP);
    assert_non_null(strstr(e.msg, "web1 is a symbolic link"));
    store_kv_clear(&kv);
    assert_file_is(victim, "level=qemu 1.0.0\n");
    assert_int_equal(unlink(gdir), 0);
}

static void symlinked_record_refused(void **state)
{
    char victim[128], path[128];
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    write_file(victim, "level=qemu 1.0.0\n");
    snprintf(path, sizeof(path), "%s/floor", dir);
    assert_int_equal(symlink(victim, path), 0);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_read(dir, "floor", &kv, &e), -ELOOP);
    assert_non_null(strstr(e.msg, "floor is a symbolic link: the state store follows none"));
    /* A write replaces the link itself; what it pointed to stays as it was. */
    assert_int_equal(store_kv_set(&kv, "level", "qemu 9.0.0"), 0);
    assert_int_equal(store_write(dir, "floor", &kv, false, &e), 0);
    store_kv_clear(&kv);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_file_is(victim, "level=qemu 1.0.0\n");
    /* The lock file too. */
    snprintf(path, sizeof(path), "%s/.lock", dir);
    unlink(path); /* an earlier test's */
    assert_int_equal(symlink(victim, path), 0);
    int fd = -1;
    struct vmha_deadline dl = vmha_deadline_in(1000);
    assert_int_equal(store_lock(dir, &dl, &fd, &e), -ELOOP);
    assert_non_null(strstr(e.msg, ".lock is a symbolic link"));
    assert_int_equal(unlink(path), 0);
}

static void fifo_record_refused_at_once(void **state)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/install", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    uint64_t t0 = vmha_now_ms();
    assert_int_equal(store_read(dir, "install", &kv, &e), -EINVAL);
    assert_true(vmha_now_ms() - t0 < 1000); /* no writer comes: a blocking open hung here */
    assert_non_null(strstr(e.msg, "install is a FIFO, not a regular file"));
    assert_int_equal(kv.n, 0);
    assert_int_equal(unlink(path), 0);
}

/* The temporary file's name before issue 15: planted links under it must stay untouched. */
static void planted_temp_names_are_not_followed(void **state)
{
    char victim[128], path[160];
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    write_file(victim, "precious\n");
    snprintf(path, sizeof(path), "%s/.floor.%ld.tmp", dir, (long)getpid());
    assert_int_equal(symlink(victim, path), 0);
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_kv_set(&kv, "level", "qemu 7.2.0"), 0);
    assert_int_equal(store_write(dir, "floor", &kv, false, &e), 0);
    assert_int_equal(store_write(dir, "floor", &kv, true, &e), -EEXIST);
    store_kv_clear(&kv);
    assert_file_is(victim, "precious\n");
    /* Nothing else is left behind: the planted link, the record and the victim. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s' | grep -c tmp)\" = 1", dir);
    assert_int_equal(system(cmd), 0);
}

static void untrusted_directories_refused(void **state)
{
    char sd[128];
    snprintf(sd, sizeof(sd), "%s/state", dir);
    assert_int_equal(mkdir(sd, 0700), 0);
    struct vmha_err e = {0};
    assert_int_equal(store_check_state_dir(sd, &e), 0);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/not-yet", dir);
    assert_int_equal(store_check_state_dir(missing, &e), 0);

    assert_int_equal(chmod(sd, 0770), 0);
    assert_int_equal(store_check_state_dir(sd, &e), -EPERM);
    assert_non_null(strstr(e.msg, "can be written by its group (mode 0770)"));
    char *gdir = NULL;
    assert_int_equal(store_guest_dir(sd, "web1", &gdir, &e), -EPERM);
    assert_null(gdir);
    assert_int_equal(chmod(sd, 01777), 0); /* sticky is not enough for state_dir */
    assert_int_equal(store_check_state_dir(sd, &e), -EPERM);
    assert_non_null(strstr(e.msg, "can be written by anyone"));

    /* Below state_dir, a directory others may write is not walked through either. */
    char gd[160];
    assert_int_equal(chmod(sd, 0755), 0);
    snprintf(gd, sizeof(gd), "%s/web1", sd);
    assert_int_equal(mkdir(gd, 0700), 0);
    assert_int_equal(chmod(gd, 0777), 0);
    struct store_kv kv = {0};
    assert_int_equal(store_read(gd, "floor", &kv, &e), -EPERM);
    assert_non_null(strstr(e.msg, "web1 can be written by anyone (mode 0777)"));
    assert_int_equal(chmod(gd, 0700), 0);
    assert_int_equal(store_read(gd, "floor", &kv, &e), -ENOENT);

    if (geteuid() != 0) {
        skip(); /* only root can give a directory away */
        return;
    }
    assert_int_equal(chown(sd, 4321, 4321), 0);
    assert_int_equal(store_check_state_dir(sd, &e), -EPERM);
    assert_non_null(strstr(e.msg, "belongs to uid 4321, not to root"));
    assert_int_equal(store_read(gd, "floor", &kv, &e), -EPERM);
    assert_non_null(strstr(e.msg, "state belongs to uid 4321"));
    assert_int_equal(chown(sd, 0, 0), 0);
}

static void guest_dir_refuses_bad_names(void **state)
{
    char *gdir = NULL;
    struct vmha_err e = {0};
    assert_int_equal(store_guest_dir(dir, "../x", &gdir, &e), -EINVAL);
    assert_null(gdir);
    assert_non_null(strstr(e.msg, "the guest name '../x' cannot name a directory"));
    assert_int_equal(store_guest_dir(dir, "a/b", &gdir, &e), -EINVAL);
    assert_int_equal(store_guest_dir(dir, "..", &gdir, &e), -EINVAL);
    assert_int_equal(store_guest_dir(dir, "", &gdir, &e), -EINVAL);
    assert_int_equal(store_guest_dir(dir, "line\nbreak", &gdir, &e), -EINVAL);
    assert_null(strchr(e.msg, '\n')); /* the sentence becomes one ocf-exit-reason line */
    assert_int_equal(store_guest_dir("", "web1", &gdir, &e), -EINVAL);

    assert_int_equal(store_guest_dir(dir, "web1", &gdir, &e), 0);
    char want[160];
    snprintf(want, sizeof(want), "%s/web1", dir);
    assert_string_equal(gdir, want);
    free(gdir);

    /* state_dir's own link is the administrator's: resolved once, then nothing follows. */
    char link[160];
    snprintf(link, sizeof(link), "%s/state-link", dir);
    assert_int_equal(symlink(dir, link), 0);
    assert_int_equal(store_guest_dir(link, "web1", &gdir, &e), 0);
    assert_string_equal(gdir, want);
    free(gdir);
    snprintf(link, sizeof(link), "%s/state-link/not/yet", dir);
    assert_int_equal(store_guest_dir(link, "web1", &gdir, &e), 0);
    snprintf(want, sizeof(want), "%s/not/yet/web1", dir);
    assert_string_equal(gdir, want);
    free(gdir);

    /* A path that does not fit is refused, never cut short. */
    char *deep = malloc(PATH_MAX + 16);
    assert_non_null(deep);
    snprintf(deep, PATH_MAX + 16, "%s", dir);
    while (strlen(deep) < PATH_MAX - 8)
        strcat(deep, "/aaaaaaa");
    assert_int_equal(store_guest_dir(deep, "web1", &gdir, &e), -ENAMETOOLONG);
    free(deep);
}

static void records_must_be_names(void **state)
{
    struct store_kv kv = {0};
    struct vmha_err e = {0};
    assert_int_equal(store_read(dir, "../floor", &kv, &e), -EINVAL);
    assert_int_equal(store_kv_set(&kv, "level", "1"), 0);
    assert_int_equal(store_write(dir, "a/b", &kv, false, &e), -EINVAL);
    store_kv_clear(&kv);
    char path[160];
    snprintf(path, sizeof(path), "%s/../x", dir);
    assert_int_equal(store_read(path, "floor", &kv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "no path with '..'"));
}

/* The digests records carry: the standard answers (FIPS 180-2, RFC 4231 case 2), so records
 * written before (with GLib) still verify. */
static void digests(void **state)
{
    char out[65];
    state_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    state_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *data = "what do ya want for nothing?";
    state_hmac_sha256_hex("Jefe", 4, data, strlen(data), out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_roundtrip),
        cmocka_unit_test(digests),
        cmocka_unit_test(names),
        cmocka_unit_test(write_read_atomic),
        cmocka_unit_test(corrupt_file_is_an_error),
        cmocka_unit_test(lock_excludes_and_times_out),
        cmocka_unit_test(symlinked_guest_dir_refused),
        cmocka_unit_test(symlinked_record_refused),
        cmocka_unit_test(fifo_record_refused_at_once),
        cmocka_unit_test(planted_temp_names_are_not_followed),
        cmocka_unit_test(untrusted_directories_refused),
        cmocka_unit_test(guest_dir_refuses_bad_names),
        cmocka_unit_test(records_must_be_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
