/* The NBD server QEMU's disk mirror writes to (remus/nbd.c): with QEMU's own NBD client
 * (qemu-io, which speaks as the block layer does), and with a client that breaks the rules. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmha/remus.h"

#define SIZE (1u << 20)

/* The disk as the server's writes made it, and how many of them were zeroes. */
struct disk {
    unsigned char bytes[SIZE];
    unsigned writes, zeroes;
};

static int disk_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
    struct disk *d = opaque;
    if (data)
        memcpy(d->bytes + off, data, len);
    else
        memset(d->bytes + off, 0, len);
    d->writes++;
    d->zeroes += !data;
    return 0;
}

static ssize_t fd_read(void *opaque, void *buf, size_t n)
{
    ssize_t r = read(*(int *)opaque, buf, n);
    return r < 0 ? -errno : r;
}

static int fd_write(void *opaque, const void *buf, size_t n)
{
    return vmha_write_all(*(int *)opaque, buf, n);
}

struct server {
    int lfd, fd, rc;
    struct disk *disk;
    pthread_t t;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    s->fd = accept(s->lfd, NULL, NULL);
    struct remus_nbd_io io = {.read = fd_read, .write = fd_write, .opaque = &s->fd};
    struct remus_nbd_export e = {
        .name = "vda", .size = SIZE, .write = disk_write, .opaque = s->disk};
    s->rc = s->fd < 0 ? -errno : remus_nbd_serve(&io, &e);
    close(s->fd);
    return NULL;
}

static void server_start(struct server *s, struct disk *d, const char *path)
{
    *s = (struct server){.disk = d};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    unlink(path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 1), 0);
    assert_int_equal(pthread_create(&s->t, NULL, serve, s), 0);
}

static int server_end(struct server *s)
{
    pthread_join(s->t, NULL);
    close(s->lfd);
    return s->rc;
}

/* qemu-io's exit status with commands cmds ("-c" "..." pairs) on export name at path. */
static int qemu_io(const char *path, const char *name, const char *const *cmds, size_t n)
{
    char uri[200];
    snprintf(uri, sizeof(uri), "nbd+unix:///%s?socket=%s", name, path);
    const char *argv[32] = {"qemu-io", "-f", "raw"};
    size_t a = 3;
    for (size_t i = 0; i < n; i++) {
        argv[a++] = "-c";
        argv[a++] = cmds[i];
    }
    argv[a++] = uri;
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execvp("qemu-io", (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sock_path(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/vmha-nbd-test-%d.sock", (int)getpid());
}

/* QEMU's client writes data and zeroes and flushes; the disk holds exactly what it wrote. */
static void qemu_writes(void **state)
{
    (void)state;
    static struct disk d;
    memset(d.bytes, 0x11, SIZE);
    char path[108];
    sock_path(path, sizeof(path));
    struct server s;
    server_start(&s, &d, path);
    const char *cmds[] = {"write -P 0xab 4096 65536", "write -z 131072 8192", "flush",
                          "write -P 0xcd 1040384 8192"};
    assert_int_equal(qemu_io(path, "vda", cmds, 4), 0);
    assert_int_equal(server_end(&s), 0);
    unlink(path);
    assert_int_equal(d.bytes[4095], 0x11);
    assert_int_equal(d.bytes[4096], 0xab);
    assert_int_equal(d.bytes[4096 + 65535], 0xab);
    assert_int_equal(d.bytes[4096 + 65536], 0x11);
    assert_int_equal(d.bytes[131072], 0);
    assert_int_equal(d.bytes[131072 + 8191], 0);
    assert_int_equal(d.bytes[131072 + 8192], 0x11);
    assert_int_equal(d.bytes[SIZE - 1], 0xcd);
    assert_true(d.writes >= 3);
    assert_true(d.zeroes >= 1);
}

/* An export of another name is not there: QEMU cannot open it, nothing is written. */
static void qemu_wrong_export(void **state)
{
    (void)state;
    static struct disk d;
    char path[108];
    sock_path(path, sizeof(path));
    struct server s;
    server_start(&s, &d, path);
    const char *cmds[] = {"write -P 0xab 0 4096"};
    assert_int_not_equal(qemu_io(path, "vdb", cmds, 1), 0);
    assert_true(server_end(&s) < 0);
    unlink(path);
    assert_int_equal(d.writes, 0);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void request(int fd, uint16_t type, uint64_t cookie, uint64_t off, uint32_t len)
{
    unsigned char q[28] = {0};
    put32(q, 0x25609513);
    q[6] = (unsigned char)(type >> 8);
    q[7] = (unsigned char)type;
    remus_put_be64(q + 8, cookie);
    remus_put_be64(q + 16, off);
    put32(q + 24, len);
    assert_int_equal(vmha_write_all(fd, q, sizeof(q)), 0);
}

/* The error of the simple reply to cookie. */
static uint32_t reply_error(int fd, uint64_t cookie)
{
    unsigned char r[16];
    assert_int_equal(read(fd, r, sizeof(r)), 16);
    assert_int_equal(remus_get_be64(r + 8), cookie);
    return (uint32_t)r[4] << 24 | (uint32_t)r[5] << 16 | (uint32_t)r[6] << 8 | r[7];
}

/* A client that writes past the end, reads, and then sends garbage: refused each time, and
 * cut off at the garbage; nothing outside the export is ever handed on. */
static void hostile_client(void **state)
{
    (void)state;
    static struct disk d;
    char path[108];
    sock_path(path, sizeof(path));
    struct server s;
    server_start(&s, &d, path);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    unsigned char greet[18];
    assert_int_equal(read(fd, greet, sizeof(greet)), 18);
    assert_memory_equal(greet, "NBDMAGICIHAVEOPT", 16);
    unsigned char hs[4 + 16 + 4 + 3 + 2] = {0};
    put32(hs, 3); /* fixed newstyle, no zeroes */
    memcpy(hs + 4, "IHAVEOPT", 8);
    put32(hs + 12, 7); /* NBD_OPT_GO */
    put32(hs + 16, 4 + 3 + 2);
    put32(hs + 20, 3);
    memcpy(hs + 24, "vda", 3);
    assert_int_equal(vmha_write_all(fd, hs, sizeof(hs)), 0);
    /* INFO export, INFO block size, ACK: 20-byte headers with 12, 14 and 0 bytes. */
    unsigned char rep[20 + 12 + 20 + 14 + 20];
    size_t got = 0;
    while (got < sizeof(rep)) {
        ssize_t n = read(fd, rep + got, sizeof(rep) - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(remus_get_be64(rep + 20 + 2), SIZE);
    request(fd, 1, 7, SIZE - 8, 16); /* a write past the end */
    assert_int_equal(vmha_write_all(fd, "0123456789abcdef", 16), 0);
    assert_int_equal(reply_error(fd, 7), 22);
    request(fd, 6, 8, UINT64_MAX - 10, 4096); /* zeroes whose end wraps around */
    assert_int_equal(reply_error(fd, 8), 22);
    request(fd, 0, 9, 0, 512); /* a read */
    assert_int_equal(reply_error(fd, 9), 22);
    request(fd, 1, 10, 0, REMUS_NBD_MAX_REQUEST + 1); /* a write too long to skip */
    assert_int_equal(server_end(&s), -EPROTO);
    close(fd);
    unlink(path);
    assert_int_equal(d.writes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qemu_writes),
        cmocka_unit_test(qemu_wrong_export),
        cmocka_unit_test(hostile_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
