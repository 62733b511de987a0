/* vmha-libxl-helper: the long-running and remote halves of the libxl backend.
 *   vmha-libxl-helper migrate-receive [--timeout-ms N]
 *       run by the source over ssh: takes a live migration on stdin/stdout (see
 *       hv_libxl_migrate.c); exit 0 when the guest runs here.
 *   vmha-libxl-helper remus-receive --listen ADDR:PORT
 *       the backup of Xen's Remus: takes one replication stream; when it ends, keeps the
 *       last complete checkpoint as the paused domain NAME--replica and exits 0 (never runs
 *       it). SIGUSR1 ends the stream at once and keeps the replica (a promotion); SIGTERM
 *       ends it and discards the replica (a stop).
 *   vmha-libxl-helper remus-send --guest NAME --to HOST:PORT [--interval MS]
 *       the primary: replicates NAME to the backup until the stream fails or SIGTERM, then
 *       lets the guest run on here, unprotected, and exits (1 on failure, 0 on SIGTERM).
 *   vmha-libxl-helper remus-promote NAME
 *       runs NAME--replica as NAME. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmha/hv.h"

static volatile sig_atomic_t stream_fd = -1, stopping, promoting;

static void on_signal(int sig)
{
    if (sig == SIGTERM)
        stopping = 1;
    else
        promoting = 1;
    if (stream_fd >= 0)
        shutdown(stream_fd, SHUT_RDWR); /* libxenlight's reader sees the end of the stream */
}

static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static int split(const char *hostport, char *host, size_t size, const char **port)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= size || !colon[1])
        return -EINVAL;
    snprintf(host, size, "%.*s", (int)(colon - hostport), hostport);
    *port = colon + 1;
    return 0;
}

static int net_socket(const char *hostport, bool listening, struct vmha_err *err)
{
    char host[256];
    const char *port;
    if (split(hostport, host, sizeof(host), &port) < 0)
        return vmha_err_set(err, -EINVAL, "%s is not HOST:PORT", hostport);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = listening ? AI_PASSIVE : 0};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0)
        return vmha_err_set(err, -EHOSTUNREACH, "%s: %s", host, gai_strerror(r));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0 && listening)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || (listening ? bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0
                             : connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)) {
        r = vmha_err_set(err, -errno, "%s %s: %s", listening ? "cannot listen on" : "cannot "
                         "reach", hostport, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return r;
    }
    freeaddrinfo(ai);
    return fd;
}

static int open_xl(struct hv_conn **c, const struct hv_ops **ops, struct vmha_err *e)
{
    struct vmha_deadline dl = vmha_deadline_in(30000);
    int r = hv_backend_for_uri("libxl", ops, e);
    return r < 0 ? r : (*ops)->open("libxl", &dl, c, e);
}

static int remus_receive(const char *listen_on, struct vmha_err *e)
{
    struct hv_conn *c = NULL;
    const struct hv_ops *ops;
    int r = open_xl(&c, &ops, e);
    if (r < 0)
        return r;
    int lfd = net_socket(listen_on, true, e);
    if (lfd < 0) {
        ops->close(c);
        return lfd;
    }
    fprintf(stderr, "vmha-libxl-helper: waiting for a primary on %s\n", listen_on);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    if (fd < 0) {
        ops->close(c);
        return vmha_err_set(e, -errno, "accept: %s", strerror(errno));
    }
    /* A primary that loses power ends the stream within seconds, instead of leaving the
     * backup waiting forever as a bare `xl remus` transport does. */
    vmha_tune_socket(fd, 5000);
    stream_fd = fd;
    char replica[300];
    struct vmha_deadline dl = vmha_deadline_in(30000); /* for the configuration */
    r = hv_libxl_remus_receive(c, fd, &dl, replica, sizeof(replica), e);
    stream_fd = -1;
    close(fd);
    if (r == 0 && stopping) {
        struct vmha_err ignored = {0};
        ops->destroy(c, replica, &ignored); /* a stop: nothing left behind */
        fprintf(stderr, "vmha-libxl-helper: stopped; replica discarded\n");
    } else if (r == 0) {
        printf("replica %s ready\n", replica);
    }
    ops->close(c);
    return r;
}

static int remus_send(const char *guest, const char *to, uint64_t interval_ms,
                      struct vmha_err *e)
{
    struct hv_conn *c = NULL;
    const struct hv_ops *ops;
    int r = open_xl(&c, &ops, e);
    if (r < 0)
        return r;
    int fd = net_socket(to, false, e);
    if (fd < 0) {
        ops->close(c);
        return fd;
    }
    /* A primary that loses power ends the stream within seconds, instead of leaving the
     * backup waiting forever as a bare `xl remus` transport does. */
    vmha_tune_socket(fd, 5000);
    stream_fd = fd;
    fprintf(stderr, "vmha-libxl-helper: replicating %s to %s every %llu ms\n", guest, to,
            (unsigned long long)interval_ms);
    struct vmha_deadline dl = vmha_deadline_in(30000);
    r = hv_libxl_remus_send(c, guest, fd, interval_ms, &dl, e);
    stream_fd = -1;
    close(fd);
    struct vmha_err e2 = {0};
    if (ops->resume(c, guest, &e2) < 0)
        fprintf(stderr, "vmha-libxl-helper: cannot resume %s: %s\n", guest, e2.msg);
    else
        fprintf(stderr, "vmha-libxl-helper: %s runs on here, unprotected\n", guest);
    ops->close(c);
    return stopping ? 0 : r;
}

static int usage(const char *me)
{
    fprintf(stderr, "usage: %s migrate-receive [--timeout-ms N]\n"
                    "       %s remus-receive --listen ADDR:PORT\n"
                    "       %s remus-send --guest NAME --to HOST:PORT [--interval MS]\n"
                    "       %s remus-promote NAME\n",
            me, me, me, me);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(argv[0]);
    const char *cmd = argv[1];
    const char *listen_on = NULL, *guest = NULL, *to = NULL;
    uint64_t timeout_ms = 600000, interval_ms = 200;
    static const struct option opts[] = {
        {"timeout-ms", required_argument, NULL, 't'}, {"listen", required_argument, NULL, 'l'},
        {"guest", required_argument, NULL, 'g'},      {"to", required_argument, NULL, 'o'},
        {"interval", required_argument, NULL, 'i'},   {0}};
    optind = 2;
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        uint64_t *n = o == 't' ? &timeout_ms : o == 'i' ? &interval_ms : NULL;
        if (n && (vmha_parse_uint(optarg, UINT64_MAX / 2, n) < 0 || *n == 0)) {
            fprintf(stderr, "%s: %s is not a positive number\n", argv[0], optarg);
            return 2;
        }
        if (o == 'l')
            listen_on = optarg;
        else if (o == 'g')
            guest = optarg;
        else if (o == 'o')
            to = optarg;
        else if (!n)
            return usage(argv[0]);
    }
    struct vmha_err e = {0};
    int r;
    if (strncmp(cmd, "remus-", 6) == 0)
        catch_signals();
    if (strcmp(cmd, "migrate-receive") == 0 && optind == argc) {
        struct vmha_deadline dl = vmha_deadline_in(timeout_ms);
        r = hv_libxl_receive(STDIN_FILENO, STDOUT_FILENO, &dl, &e);
    } else if (strcmp(cmd, "remus-receive") == 0 && listen_on && optind == argc) {
        r = remus_receive(listen_on, &e);
    } else if (strcmp(cmd, "remus-send") == 0 && guest && to && optind == argc) {
        r = remus_send(guest, to, interval_ms, &e);
    } else if (strcmp(cmd, "remus-promote") == 0 && optind == argc - 1) {
        struct hv_conn *c = NULL;
        const struct hv_ops *ops;
        if ((r = open_xl(&c, &ops, &e)) == 0) {
            r = ops->replica_promote(c, argv[optind], &e);
            ops->close(c);
        }
    } else {
        return usage(argv[0]);
    }
    if (r < 0) {
        fprintf(stderr, "vmha-libxl-helper: %s\n", vmha_err_msg(&e));
        return 1;
    }
    return 0;
}
