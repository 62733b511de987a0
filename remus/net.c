/* The replication stream's ends on the network: addresses, connecting, listening. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remus_private.h"

int remus_connect(const char *address, const struct vmha_deadline *dl, struct vmha_err *err)
{
    char host[256], port[16];
    int r = vmha_split_hostport(address, host, sizeof(host), port, sizeof(port));
    if (r < 0)
        return vmha_err_set(err, r, "replica address %s is not host:port or [v6]:port", address);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0)
        return vmha_err_set(err, -EHOSTUNREACH, "cannot resolve %s: %s", address, gai_strerror(r));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return vmha_err_set(err, -errno, "socket: %s", strerror(errno));
    }
    r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        uint64_t left = vmha_deadline_left_ms(dl);
        if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) != 1) {
            close(fd);
            return vmha_err_set(err, -ETIMEDOUT, "the replica at %s does not answer", address);
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        r = soerr ? -1 : 0;
        errno = soerr;
    }
    if (r < 0) {
        r = -errno;
        close(fd);
        return vmha_err_set(err, r, "cannot reach the replica at %s: %s", address, strerror(-r));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

int remus_listen(const char *address, struct vmha_err *err)
{
    char host[256], port[16];
    int r = vmha_split_hostport(address, host, sizeof(host), port, sizeof(port));
    if (r < 0)
        return vmha_err_set(err, r, "replication address %s is not host:port or [v6]:port",
                            address);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0)
        return vmha_err_set(err, -EINVAL, "cannot resolve replication address %s: %s", address,
                            gai_strerror(r));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return vmha_err_set(err, r, "cannot listen on %s: %s%s", address, strerror(-r),
                            r == -EADDRINUSE ? " (another replicated guest there? give each "
                                               "its own replication_port)"
                                             : "");
    }
    freeaddrinfo(ai);
    return fd;
}
