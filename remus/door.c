/* The backup's door: the listening socket, and the connections whose peer has not proven
 * itself yet. Their handshakes advance side by side, so a peer that connects and says nothing
 * delays no one: the primary is let in as soon as its handshake is through. Both engines
 * take their primary through it. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cluster.h"

/* How long a peer has to prove itself: the checkpoint's timeout, within 2 to 10 s. Peers
 * are served side by side, so a long window costs a slot, not a delay (an emulated dom0
 * that also runs Pacemaker can take seconds for a handshake). */
static uint64_t handshake_ms(const struct remus_ctx *x)
{
    return x->timeout_ms < 2000 ? 2000 : x->timeout_ms > 10000 ? 10000 : x->timeout_ms;
}

static void refuse(struct remus_ctx *x, struct remus_pending *p, const char *why)
{
    x->st.refused++;
    /* Whoever knocks without the key could fill the log: say so sparingly. */
    static uint64_t said_at;
    if (x->st.refused <= 3 || vmha_now_ms() - said_at > 60000) {
        said_at = vmha_now_ms();
        cluster_log(LOG_WARNING, "replica of %s: refused a connection from %s: %s (%llu so far)",
                    x->guest, p->from, why, (unsigned long long)x->st.refused);
    }
    chan_close(&p->ch);
    remus_publish(x);
}

static void peer_name(int fd, char *buf, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char host[64] = "?";
    if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0)
        getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
    snprintf(buf, size, "%s", host);
}

static void accept_one(struct remus_ctx *x, struct remus_door *d)
{
    int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (d->n == REMUS_PENDING_MAX) { /* the oldest has had the longest to prove itself */
        refuse(x, &d->pend[0], "too many connections waiting to authenticate");
        memmove(d->pend, d->pend + 1, (REMUS_PENDING_MAX - 1) * sizeof(*d->pend));
        d->n--;
    }
    struct remus_pending *p = &d->pend[d->n++];
    *p = (struct remus_pending){.ch = {.fd = fd}, .dl = vmha_deadline_in(handshake_ms(x))};
    peer_name(fd, p->from, sizeof(p->from));
    vmha_tune_socket(fd, x->timeout_ms);
    struct vmha_err e = {0};
    if (chan_server_start(&p->ch, x, &e) < 0) {
        refuse(x, p, e.msg);
        d->n--;
    }
}

int remus_door_open(struct remus_ctx *x, struct remus_door *d, struct vmha_err *err)
{
    *d = (struct remus_door){.lfd = remus_listen(x->listen, err)};
    if (d->lfd < 0)
        return d->lfd;
    if (x->auth == REMUS_AUTH_NONE)
        cluster_log(LOG_WARNING,
                    "replica of %s takes checkpoints from ANYONE who reaches %s "
                    "(replication_insecure=true): for a lab only",
                    x->guest, x->listen);
    return 0;
}

/* Hands over the first pending peer that has proven itself. */
static int take_ready(struct remus_door *d, struct chan *ret)
{
    for (size_t i = 0; i < d->n; i++) {
        if (!d->pend[i].ready)
            continue;
        *ret = d->pend[i].ch;
        memmove(&d->pend[i], &d->pend[i + 1], (d->n - i - 1) * sizeof(*d->pend));
        d->n--;
        return 1;
    }
    return 0;
}

int remus_door_wait(struct remus_ctx *x, struct remus_door *d, uint64_t ms, struct chan *ret)
{
    if (take_ready(d, ret))
        return 1;
    struct pollfd pfd[REMUS_PENDING_MAX + 1] = {{.fd = d->lfd, .events = POLLIN}};
    for (size_t i = 0; i < d->n; i++)
        pfd[i + 1] = (struct pollfd){.fd = d->pend[i].ch.fd, .events = POLLIN};
    if (poll(pfd, d->n + 1, (int)ms) < 0)
        return errno == EINTR ? 0 : -errno;
    for (size_t i = d->n; i-- > 0;) {
        struct remus_pending *p = &d->pend[i];
        int r = 0;
        struct vmha_err e = {0};
        if (pfd[i + 1].revents)
            r = chan_server_step(&p->ch, x, &e);
        if (r == 0 && vmha_deadline_passed(&p->dl))
            r = vmha_err_set(&e, -ETIMEDOUT, "it did not authenticate in time");
        if (r > 0)
            p->ready = true;
        if (r >= 0)
            continue;
        refuse(x, p, e.msg);
        memmove(p, p + 1, (d->n - i - 1) * sizeof(*p));
        d->n--;
    }
    if (pfd[0].revents)
        accept_one(x, d);
    return take_ready(d, ret);
}

void remus_door_close(struct remus_door *d)
{
    for (size_t i = 0; i < d->n; i++)
        chan_close(&d->pend[i].ch);
    if (d->lfd >= 0)
        close(d->lfd);
    d->n = 0;
    d->lfd = -1;
}
