/* Unit tests of remus/'s pure parts: the stream's header and trailer, the stale mark, the
 * status file; and of the libvirt save-image header the backup's file starts with. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv_libvirt_private.h"
#include "vmha/remus.h"

static void header_round_trip(void **state)
{
    struct remus_epoch_id id = {.guest = "ft1", .session = 0x0123456789abcdefull, .epoch = 42};
    char buf[REMUS_HEADER_MAX];
    int n = remus_header_format(&id, buf, sizeof(buf));
    assert_true(n > 0);
    assert_string_equal(buf, "VMHA-CKPT 1 ft1 0123456789abcdef 42\n");
    struct remus_epoch_id back;
    struct vmha_err e = {0};
    assert_int_equal(remus_header_parse(buf, &back, &e), 0);
    assert_string_equal(back.guest, "ft1");
    assert_true(back.session == id.session);
    assert_true(back.epoch == 42);
    /* Names that cannot be a file name, or a second word, never travel. */
    struct remus_epoch_id bad = {.guest = "a/b", .session = 1, .epoch = 1};
    assert_int_equal(remus_header_format(&bad, buf, sizeof(buf)), -EINVAL);
}

static void header_rejects(void **state)
{
    const char *bad[] = {
        "GET / HTTP/1.1\n",
        "VMHA-CKPT 2 ft1 0123456789abcdef 42\n",   /* another version */
        "VMHA-CKPT 1 ft1 0123456789abcdef 42",     /* no newline: cut off */
        "VMHA-CKPT 1 ft1 0123456789abcde 42\n",    /* short session */
        "VMHA-CKPT 1 ft1 0123456789abcdef 0\n",    /* epochs start at 1 */
        "VMHA-CKPT 1 ../x 0123456789abcdef 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct remus_epoch_id id;
        struct vmha_err e = {0};
        if (remus_header_parse(bad[i], &id, &e) != -EPROTO)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void trailer(void **state)
{
    unsigned char t[REMUS_TRAILER_LEN];
    remus_trailer_make(0x0102030405060708ull, t);
    assert_memory_equal(t, "VMHA-END\1\2\3\4\5\6\7\x08", REMUS_TRAILER_LEN);
    assert_true(remus_trailer_ok(t, 0x0102030405060708ull));
    assert_false(remus_trailer_ok(t, 0x0102030405060709ull));
    t[0] = 'X';
    assert_false(remus_trailer_ok(t, 0x0102030405060708ull));
}

static void stale_marks(void **state)
{
    char mark[64];
    remus_stale_format(0xabcull, 10, mark, sizeof(mark));
    assert_string_equal(mark, "0000000000000abc 10");
    assert_false(remus_stale_covers(NULL, 0xabc, 5));
    assert_false(remus_stale_covers("", 0xabc, 5));
    assert_true(remus_stale_covers(mark, 0xabc, 10));  /* the epoch the primary gave up on */
    assert_true(remus_stale_covers(mark, 0xabc, 3));
    assert_false(remus_stale_covers(mark, 0xabc, 11)); /* a later checkpoint is good again */
    assert_true(remus_stale_covers(mark, 0xdef, 99));  /* another primary's mark */
    assert_true(remus_stale_covers("garbage", 0xabc, 11));
    assert_true(remus_stale_covers("0000000000000abc 10 x", 0xabc, 11));
}

static void status_file(void **state)
{
    char dir[] = "/tmp/remus-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct remus_status s = {.role = "primary", .state = "protected", .peer = "node2",
                             .session = 0xfeedull, .epoch = 7, .committed_ms = 1700000000123ull,
                             .pause_ms = 12, .ckpt_ms = 150, .bytes = 78000000, .epochs = 7,
                             .failures = 1, .error = "x=y, with spaces"};
    struct vmha_err e = {0};
    assert_int_equal(remus_status_write(dir, &s, &e), 0);
    struct remus_status r;
    assert_int_equal(remus_status_read(dir, &r, &e), 0);
    assert_string_equal(r.role, "primary");
    assert_string_equal(r.state, "protected");
    assert_string_equal(r.peer, "node2");
    assert_true(r.session == 0xfeed && r.epoch == 7 && r.committed_ms == 1700000000123ull);
    assert_true(r.pause_ms == 12 && r.ckpt_ms == 150 && r.bytes == 78000000);
    assert_string_equal(r.error, "x=y, with spaces");
    /* No replicator holds the lock: not running, whatever the pid file says. */
    char path[128];
    snprintf(path, sizeof(path), "%s/send.pid", dir);
    FILE *f = fopen(path, "w");
    fputs("1\n", f);
    fclose(f);
    assert_false(remus_running(dir, "send", NULL));
    uint64_t session, epoch;
    char ck[256];
    assert_int_equal(remus_checkpoint(dir, &session, &epoch, ck, sizeof(ck)), -ENOENT);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void save_header(void **state)
{
    unsigned char *h = NULL;
    size_t len = 0;
    assert_int_equal(hv_libvirt_save_header("<domain/>", &h, &len), 0);
    /* libvirt's layout: 16-byte magic, five uint32, 14 unused: 92 bytes, then the XML. */
    assert_int_equal(len, 92 + 4096);
    assert_memory_equal(h, "LibvirtQemudSave", 16);
    uint32_t v[5];
    memcpy(v, h + 16, sizeof(v));
    assert_int_equal(v[0], 2);    /* version */
    assert_int_equal(v[1], 4096); /* data_len: the XML with room after it */
    assert_int_equal(v[2], 1);    /* was_running */
    assert_int_equal(v[3], 0);    /* raw */
    assert_int_equal(v[4], 0);    /* no cookie */
    assert_string_equal((const char *)h + 92, "<domain/>");
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_round_trip), cmocka_unit_test(header_rejects),
        cmocka_unit_test(trailer),           cmocka_unit_test(stale_marks),
        cmocka_unit_test(status_file),       cmocka_unit_test(save_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
