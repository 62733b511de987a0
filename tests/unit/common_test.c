/* Unit tests of common/: parsers, deadlines, the error context, file reads and writes. */
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
#include <unistd.h>

#include <cmocka.h>

#include "vmha/common.h"

static void duration_units(void **state)
{
    uint64_t ms = 0;
    assert_int_equal(vmha_parse_duration_ms("90", 1000, &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(vmha_parse_duration_ms("90", 1, &ms), 0);
    assert_int_equal(ms, 90);
    assert_int_equal(vmha_parse_duration_ms("500ms", 1000, &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(vmha_parse_duration_ms("2min", 1000, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(vmha_parse_duration_ms("2m", 1000, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(vmha_parse_duration_ms("1h", 1000, &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vmha_parse_duration_ms("30S", 1000, &ms), 0);
    assert_int_equal(ms, 30000);
}

static void duration_rejects(void **state)
{
    uint64_t ms = 7;
    assert_int_equal(vmha_parse_duration_ms("", 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms("-5", 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms("5 s", 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms("5days", 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms("s", 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms(NULL, 1000, &ms), -EINVAL);
    assert_int_equal(vmha_parse_duration_ms("99999999999999999999", 1, &ms), -ERANGE);
    assert_int_equal(vmha_parse_duration_ms("18446744073709551h", 1000, &ms), -ERANGE);
    assert_int_equal(ms, 7);
}

static void uint_bounds(void **state)
{
    uint64_t v = 3;
    assert_int_equal(vmha_parse_uint("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmha_parse_uint("10", 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(vmha_parse_uint("11", 10, &v), -ERANGE);
    assert_int_equal(vmha_parse_uint("1x", 10, &v), -EINVAL);
    assert_int_equal(vmha_parse_uint(" 1", 10, &v), -EINVAL);
    assert_int_equal(vmha_parse_uint("+1", 10, &v), -EINVAL);
    assert_int_equal(v, 10);
}

static void bool_spellings(void **state)
{
    bool b = false;
    const char *yes[] = {"1", "true", "TRUE", "yes", "on", "y"};
    const char *no[] = {"0", "false", "No", "off", "n"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        b = false;
        assert_int_equal(vmha_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
        b = true;
        assert_int_equal(vmha_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(vmha_parse_bool("maybe", &b), -EINVAL);
    assert_int_equal(vmha_parse_bool("", &b), -EINVAL);
}

static void deadline_arithmetic(void **state)
{
    struct vmha_deadline d = vmha_deadline_in(10000);
    uint64_t left = vmha_deadline_left_ms(&d);
    assert_true(left > 9000 && left <= 10000);
    assert_false(vmha_deadline_passed(&d));
    struct vmha_deadline early = vmha_deadline_before(&d, 4000);
    assert_int_equal(early.at_ms, d.at_ms - 4000);
    /* Reserving more than is left yields "now", never a point in the past or a wrap. */
    struct vmha_deadline none = vmha_deadline_before(&d, 60000);
    assert_true(none.at_ms >= vmha_now_ms() - 1 && none.at_ms <= d.at_ms);
    assert_int_equal(vmha_deadline_min(d, early).at_ms, early.at_ms);
    assert_int_equal(vmha_deadline_min(early, d).at_ms, early.at_ms);
}

static void deadline_sleep_is_bounded(void **state)
{
    struct vmha_deadline d = vmha_deadline_in(50);
    uint64_t t0 = vmha_now_ms();
    assert_true(vmha_deadline_sleep(&d, 10000));
    uint64_t slept = vmha_now_ms() - t0;
    assert_true(slept >= 45 && slept < 1000);
    assert_true(vmha_deadline_passed(&d));
    assert_false(vmha_deadline_sleep(&d, 10));
}

static void process_age(void **state)
{
    /* This test process started moments ago; its age grows with the clock. */
    uint64_t a = vmha_process_age_ms();
    assert_true(a < 60000);
    struct vmha_deadline d = vmha_deadline_in(200);
    vmha_deadline_sleep(&d, 200);
    uint64_t b = vmha_process_age_ms();
    assert_true(b >= a + 150); /* /proc's ticks are 10 ms */
    assert_true(b < a + 5000);
}

static void err_context(void **state)
{
    struct vmha_err e = {0};
    assert_int_equal(vmha_err_set(&e, -ENOENT, "no %s here", "guest"), -ENOENT);
    assert_string_equal(vmha_err_msg(&e), "no guest here");
    struct vmha_err bare = {.code = -EACCES};
    assert_string_equal(vmha_err_msg(&bare), strerror(EACCES));
    assert_int_equal(vmha_err_set(NULL, -EIO, "ignored"), -EIO);
}

static void read_file_limits(void **state)
{
    char *text = NULL;
    struct vmha_err e = {0};
    assert_int_equal(vmha_read_file("/nonexistent/vmha", 100, &text, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/vmha"));
    assert_int_equal(vmha_read_file("/", 100, &text, &e), -EINVAL);
    assert_int_equal(vmha_read_file(SRCDIR "/data/small.xml", 4, &text, &e), -EFBIG);
    assert_null(text);
    assert_int_equal(vmha_read_file(SRCDIR "/data/small.xml", 1 << 20, &text, &e), 0);
    assert_non_null(strstr(text, "<domain"));
    free(text);
}

static void run_reports_and_kills(void **state)
{
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    char *const ok_argv[] = {"true", NULL};
    assert_int_equal(vmha_run(ok_argv, &dl, &e), 0);
    char *const fail_argv[] = {"sh", "-c", "echo 'first line' >&2; echo second >&2; exit 3", NULL};
    assert_int_equal(vmha_run(fail_argv, &dl, &e), -EIO);
    assert_string_equal(e.msg, "sh exited with 3: first line");
    char *const missing[] = {"/nonexistent/vmha-helper", NULL};
    assert_true(vmha_run(missing, &dl, &e) < 0);
    assert_non_null(strstr(e.msg, "vmha-helper"));
    uint64_t t0 = vmha_now_ms();
    struct vmha_deadline soon = vmha_deadline_in(300);
    char *const slow[] = {"sleep", "10", NULL};
    assert_int_equal(vmha_run(slow, &soon, &e), -ETIMEDOUT);
    assert_true(vmha_now_ms() - t0 < 2000);
    assert_non_null(strstr(e.msg, "did not finish in time"));
}

static void run_output_is_whole_and_bounded(void **state)
{
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    char *out = NULL;
    /* More than one pipe's worth, with stderr talking at the same time. */
    char *const big[] = {"sh", "-c", "seq 1 20000; echo noise >&2", NULL};
    assert_int_equal(vmha_run_output(big, &dl, &out, 1 << 20, &e), 0);
    assert_int_equal(strlen(out), 108894);
    assert_non_null(strstr(out, "\n19999\n20000\n"));
    free(out);
    out = NULL;
    char *const quiet[] = {"true", NULL};
    assert_int_equal(vmha_run_output(quiet, &dl, &out, 16, &e), 0);
    assert_string_equal(out, "");
    free(out);
    out = NULL;
    /* Too much is refused, and the program does not outlive the refusal. */
    char *const endless[] = {"yes", NULL};
    assert_int_equal(vmha_run_output(endless, &dl, &out, 65536, &e), -EFBIG);
    assert_null(out);
    assert_non_null(strstr(e.msg, "yes printed more than 65536 bytes"));
    /* A failure says what it said on stderr, and gives no output. */
    char *const fail[] = {"sh", "-c", "echo partial; echo 'it broke' >&2; exit 4", NULL};
    assert_int_equal(vmha_run_output(fail, &dl, &out, 4096, &e), -EIO);
    assert_null(out);
    assert_string_equal(e.msg, "sh exited with 4: it broke");
}

static char tmpdir[64];

static int make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vmha-common-test.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static size_t count_entries(const char *dir, const char *needle)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c -- '%s'", dir, needle);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    unsigned long n = 0;
    assert_int_equal(fscanf(p, "%lu", &n), 1);
    pclose(p);
    return n;
}

static void fifo_read_refused_at_once(void **state)
{
    assert_int_equal(make_tmpdir(), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    char *text = NULL;
    struct vmha_err e = {0};
    /* Without a writer, a blocking open would never return. */
    uint64_t t0 = vmha_now_ms();
    assert_int_equal(vmha_read_file(path, 100, &text, &e), -EINVAL);
    assert_true(vmha_now_ms() - t0 < 1000);
    assert_null(text);
    assert_non_null(strstr(e.msg, "is a FIFO, not a regular file"));
    assert_non_null(strstr(e.msg, path));
    remove_tmpdir();
}

static void read_at_follows_no_link(void **state)
{
    assert_int_equal(make_tmpdir(), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/real", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("level=1\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/link", tmpdir);
    assert_int_equal(symlink("real", path), 0);
    int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct vmha_err e = {0};
    assert_int_equal(vmha_read_blob_at(dfd, "real", "shown/real", 100, &buf, &len, &e), 0);
    assert_int_equal(len, 8);
    free(buf);
    buf = NULL;
    assert_int_equal(vmha_read_blob_at(dfd, "link", "shown/link", 100, &buf, &len, &e), -ELOOP);
    assert_null(buf);
    assert_string_equal(e.msg, "shown/link is a symbolic link: refusing to follow it");
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(vmha_read_blob_at(dfd, "fifo", "shown/fifo", 100, &buf, &len, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "shown/fifo is a FIFO"));
    close(dfd);
    remove_tmpdir();
}

static void temp_names_are_unique_per_host(void **state)
{
    assert_int_equal(make_tmpdir(), 0);
    int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    char host[256] = "", a[NAME_MAX + 1], b[NAME_MAX + 1], want[300];
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    snprintf(want, sizeof(want), ".floor.%s.", host);
    int fa = vmha_temp_create_at(dfd, "floor", a, sizeof(a));
    int fb = vmha_temp_create_at(dfd, "floor", b, sizeof(b));
    assert_true(fa >= 0 && fb >= 0);
    assert_string_not_equal(a, b);
    /* .<file>.<host>.<16 hex digits>.tmp */
    assert_int_equal(strncmp(a, want, strlen(want)), 0);
    assert_int_equal(strncmp(b, want, strlen(want)), 0);
    assert_int_equal(strlen(a), strlen(want) + 16 + 4);
    assert_string_equal(a + strlen(a) - 4, ".tmp");
    struct stat st;
    assert_int_equal(fstatat(dfd, a, &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    close(fa);
    close(fb);
    /* A long name still gives a temporary name a directory can hold. */
    char longname[256];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    int fc = vmha_temp_create_at(dfd, longname, a, sizeof(a));
    assert_true(fc >= 0);
    assert_true(strlen(a) <= NAME_MAX);
    close(fc);
    assert_int_equal(vmha_temp_create_at(dfd, "floor", a, 10), -ENAMETOOLONG);
    close(dfd);
    remove_tmpdir();
}

static void write_file_replaces_whole(void **state)
{
    assert_int_equal(make_tmpdir(), 0);
    char path[128], target[128];
    snprintf(path, sizeof(path), "%s/config", tmpdir);
    struct vmha_err e = {0};
    assert_int_equal(vmha_write_file(path, "one", 3, true, &e), 0);
    assert_int_equal(vmha_write_file(path, "two!", 4, false, &e), 0);
    char *text = NULL;
    assert_int_equal(vmha_read_file(path, 100, &text, &e), 0);
    assert_string_equal(text, "two!");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(tmpdir, "tmp"), 0);
    /* A link planted at the name is replaced, never written through. */
    snprintf(target, sizeof(target), "%s/target", tmpdir);
    assert_int_equal(vmha_write_file(target, "keep", 4, false, &e), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("target", path), 0);
    assert_int_equal(vmha_write_file(path, "new", 3, false, &e), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(vmha_read_file(target, 100, &text, &e), 0);
    assert_string_equal(text, "keep");
    free(text);
    /* A failure leaves no temporary file behind. */
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/dir", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/dir/x", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/dir", tmpdir);
    assert_true(vmha_write_file(sub, "x", 1, false, &e) < 0);
    assert_non_null(strstr(e.msg, sub));
    assert_int_equal(count_entries(tmpdir, "tmp"), 0);
    assert_int_equal(vmha_write_file("/nonexistent/vmha/x", "x", 1, false, &e), -ENOENT);
    remove_tmpdir();
}

/* The one host:port parser (replication addresses). */
static void hostport(void **state)
{
    char h[64], p[8];
    assert_int_equal(vmha_split_hostport("node1:7790", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "node1");
    assert_string_equal(p, "7790");
    assert_int_equal(vmha_split_hostport("[fd00::1]:7790", h, sizeof(h), p, sizeof(p)), 0);
    assert_string_equal(h, "fd00::1");
    assert_int_equal(vmha_split_hostport("fd00::1:7790", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(vmha_split_hostport("node1", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(vmha_split_hostport("node1:", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(vmha_split_hostport(":7790", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(vmha_split_hostport("[]:7790", h, sizeof(h), p, sizeof(p)), -EINVAL);
    assert_int_equal(vmha_split_hostport("n:123456789", h, sizeof(h), p, sizeof(p)), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostport),
        cmocka_unit_test(run_reports_and_kills),
        cmocka_unit_test(run_output_is_whole_and_bounded),
        cmocka_unit_test(duration_units),
        cmocka_unit_test(duration_rejects),
        cmocka_unit_test(uint_bounds),
        cmocka_unit_test(bool_spellings),
        cmocka_unit_test(deadline_arithmetic),
        cmocka_unit_test(deadline_sleep_is_bounded),
        cmocka_unit_test(err_context),
        cmocka_unit_test(read_file_limits),
        cmocka_unit_test(process_age),
        cmocka_unit_test(fifo_read_refused_at_once),
        cmocka_unit_test(read_at_follows_no_link),
        cmocka_unit_test(temp_names_are_unique_per_host),
        cmocka_unit_test(write_file_replaces_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
