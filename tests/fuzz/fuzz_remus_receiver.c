/* Fuzzes the backup's receiver (remus/receiver.c) on what a proven primary sends in one
 * epoch: the header line, the body, the trailer. Authentication is chan.c's (TLS) and comes
 * first; this is everything after it, the bytes an authenticated but buggy or compromised
 * peer controls. The input goes through a socket pair into remus_receive_epoch, which checks,
 * commits into a directory and answers, as the real replicator does. The backup holds a
 * committed checkpoint of session 00000000000000aa, epoch 1, over 4 pages of memory, before
 * every input (so incremental epochs are reachable too), and one 16 KiB disk (vda), so that
 * a disk base and disk sections reach the disk's file. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "remus_private.h"

/* What the replicator's main.c provides: its signal flags, and its status file (the fuzz
 * target has none to write). */
volatile sig_atomic_t remus_stop_requested, remus_demote_requested;
void remus_publish(struct remus_ctx *x)
{
    (void)x;
}
int remus_fail(struct remus_ctx *x, const struct vmha_err *err)
{
    (void)x, (void)err;
    abort(); /* only remus_receive, which this target does not run, calls it */
}

#define MEMORY (4 * REMUS_PAGE)

/* Epoch 1 of session aa, whole: page 1 of 0x11, device state "dev". */
static void seed(const char *dir)
{
    static unsigned char body[32 + 8 + REMUS_PAGE + 16 + 3];
    unsigned char *p = body;
    memcpy(p, REMUS_BODY_RAM, 8);
    remus_put_be64(p + 8, REMUS_BODY_FULL);
    remus_put_be64(p + 16, MEMORY);
    remus_put_be64(p + 24, 1);
    remus_put_be64(p + 32, 1);
    memset(p + 40, 0x11, REMUS_PAGE);
    p += 40 + REMUS_PAGE;
    memcpy(p, REMUS_BODY_DEV, 8);
    remus_put_be64(p + 8, 3);
    memcpy(p + 16, "dev", 3);
    fuzz_clear_dir(dir);
    fuzz_write(dir, "ckpt.jrnl", body, sizeof(body));
    fuzz_write(dir, "ckpt.meta", "session=00000000000000aa\nepoch=1\n", 33);
}

#define DISK (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200], local[4200];
    static struct remus_disks disks;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/replica", fuzz_tmpdir());
        fuzz_mkdir(dir);
        snprintf(local, sizeof(local), "%s/local", fuzz_tmpdir());
        char ddir[4300], spec[4400];
        snprintf(ddir, sizeof(ddir), "%s/disks", fuzz_tmpdir());
        fuzz_mkdir(ddir);
        void *zero = calloc(1, DISK);
        fuzz_write(ddir, "vda.img", zero, DISK);
        free(zero);
        snprintf(spec, sizeof(spec), "vda=%s/vda.img", ddir);
        struct vmha_err e = {0};
        if (remus_disks_add(&disks, spec, &e) < 0)
            abort();
        signal(SIGPIPE, SIG_IGN);
    }
    seed(dir);
    struct vmha_err derr = {0};
    if (remus_disks_save(dir, &disks, &derr) < 0)
        abort();
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        abort();
    /* The primary's bytes, all at once: the socket's buffer takes what libFuzzer sends (its
     * inputs stay small); whatever does not fit is not sent, as if the primary died. */
    int big = 4 << 20;
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = send(sp[1], data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    shutdown(sp[1], SHUT_WR);
    struct remus_ctx x = {.guest = "ft9",
                          .dir = dir,
                          .timeout_ms = 200,
                          .memory = MEMORY,
                          .auth = REMUS_AUTH_NONE,
                          .disks = disks,
                          .local_dir = local};
    struct chan ch = {.fd = sp[0]};
    struct vmha_deadline hdl = vmha_deadline_in(200);
    struct vmha_err err = {0};
    int r = remus_receive_epoch(&x, &ch, &hdl, &err);
    if (getenv("FUZZ_VERBOSE")) /* what the backup made of it, to check a seed by hand */
        fprintf(stderr, "receiver: %s\n", r == 0 ? "committed" : err.msg);
    close(sp[0]);
    close(sp[1]);
    return 0;
}
