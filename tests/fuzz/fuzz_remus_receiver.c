/* Fuzzes the backup's receiver (remus/receiver.c) on what a proven primary sends in one
 * epoch: the header line, the body, the trailer. Authentication is chan.c's (TLS) and comes
 * first; this is everything after it, the bytes an authenticated but buggy or compromised
 * peer controls. The input goes through a socket pair into remus_receive_epoch, which checks,
 * commits into a directory and answers, as the real replicator does. The backup holds a
 * committed checkpoint of session 00000000000000aa, epoch 1, over 4 pages of memory, before
 * every input (so incremental epochs are reachable too). */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "%s/replica", fuzz_tmpdir());
        fuzz_mkdir(dir);
        signal(SIGPIPE, SIG_IGN);
    }
    seed(dir);
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
    struct remus_ctx x = {
        .guest = "ft9", .dir = dir, .timeout_ms = 200, .memory = MEMORY, .auth = REMUS_AUTH_NONE};
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
