/* Carries a stream that a library speaks on a plain descriptor (libxenlight's Remus) over
 * the authenticated channel: one thread per direction, so a large checkpoint going one way
 * never holds up the acknowledgements coming the other. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remus_private.h"

/* A stream quiet between checkpoints is fine; a dead peer is found by the socket's
 * keepalive (vmha_tune_socket), not by this. */
#define PUMP_IDLE_MS (24ull * 3600 * 1000)

static void *outward(void *arg)
{
    struct remus_pump *p = arg;
    unsigned char buf[64 << 10];
    for (;;) {
        ssize_t n = read(p->local, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        struct vmha_deadline dl = vmha_deadline_in(p->timeout_ms);
        if (chan_write_all(&p->ch, buf, (size_t)n, &dl) < 0)
            break;
    }
    /* The library is done sending (or the network failed): tell the peer, and the library
     * that nothing more will go out. */
    chan_shutdown_wr(&p->ch);
    shutdown(p->local, SHUT_RD);
    return NULL;
}

static void *inward(void *arg)
{
    struct remus_pump *p = arg;
    unsigned char buf[64 << 10];
    for (;;) {
        struct vmha_deadline dl = vmha_deadline_in(PUMP_IDLE_MS);
        ssize_t n = chan_read(&p->ch, buf, sizeof(buf), &dl);
        if (n <= 0 || vmha_write_all(p->local, buf, (size_t)n) < 0)
            break;
    }
    /* The library reads the end of its stream. */
    shutdown(p->local, SHUT_WR);
    return NULL;
}

int remus_pump_start(struct remus_pump *p, struct chan *ch, uint64_t timeout_ms, int *ret_fd,
                     struct vmha_err *err)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return vmha_err_set(err, -errno, "socketpair: %s", strerror(errno));
    *p = (struct remus_pump){.ch = *ch, .local = sp[0], .timeout_ms = timeout_ms};
    *ch = (struct chan){.fd = -1}; /* the pump's now */
    if (pthread_create(&p->out, NULL, outward, p) != 0) {
        close(sp[0]);
        close(sp[1]);
        chan_close(&p->ch);
        return vmha_err_set(err, -EAGAIN, "cannot start the stream's threads");
    }
    if (pthread_create(&p->in, NULL, inward, p) != 0) {
        shutdown(sp[0], SHUT_RDWR);
        pthread_join(p->out, NULL);
        close(sp[0]);
        close(sp[1]);
        chan_close(&p->ch);
        return vmha_err_set(err, -EAGAIN, "cannot start the stream's threads");
    }
    *ret_fd = sp[1];
    return 0;
}

void remus_pump_stop(struct remus_pump *p)
{
    shutdown(p->local, SHUT_RDWR);
    shutdown(p->ch.fd, SHUT_RDWR);
    pthread_join(p->out, NULL);
    pthread_join(p->in, NULL);
    close(p->local);
    chan_close(&p->ch);
}
