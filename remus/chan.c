/* The replication connection: a TCP socket, optionally inside TLS with the x509 credentials
 * libvirt's own TLS transport uses, so that a checkpoint (the guest's whole memory) never
 * crosses the network in the clear when replication_tls is on. Both sides present a
 * certificate signed by the cluster's CA; the primary also checks the backup's name. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remus_private.h"

#define TLS_CA "/etc/pki/CA/cacert.pem"
#define TLS_SERVER_CERT "/etc/pki/libvirt/servercert.pem"
#define TLS_SERVER_KEY "/etc/pki/libvirt/private/serverkey.pem"
#define TLS_CLIENT_CERT "/etc/pki/libvirt/clientcert.pem"
#define TLS_CLIENT_KEY "/etc/pki/libvirt/private/clientkey.pem"

static int tls_err(struct vmha_err *err, int r, const char *what)
{
    return vmha_err_set(err, -EPROTO, "%s: %s", what, gnutls_strerror(r));
}

static int wait_for(int fd, short events, const struct vmha_deadline *dl)
{
    for (;;) {
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (remus_stop_requested && events == POLLIN)
            return -ECANCELED;
    }
}

int chan_tls(struct chan *c, bool server, const char *peer_name, const struct vmha_deadline *dl,
             struct vmha_err *err)
{
    int r = gnutls_certificate_allocate_credentials(&c->creds);
    if (r < 0)
        return tls_err(err, r, "TLS");
    const char *cert = server ? TLS_SERVER_CERT : TLS_CLIENT_CERT;
    const char *key = server ? TLS_SERVER_KEY : TLS_CLIENT_KEY;
    if ((r = gnutls_certificate_set_x509_trust_file(c->creds, TLS_CA, GNUTLS_X509_FMT_PEM)) <= 0)
        return vmha_err_set(err, -ENOENT, "replication_tls: cannot load the CA certificate %s: %s",
                            TLS_CA, r < 0 ? gnutls_strerror(r) : "no certificate in it");
    if ((r = gnutls_certificate_set_x509_key_file(c->creds, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
        return vmha_err_set(err, -ENOENT, "replication_tls: cannot load %s and %s: %s", cert, key,
                            gnutls_strerror(r));
    if ((r = gnutls_init(&c->tls, server ? GNUTLS_SERVER : GNUTLS_CLIENT)) < 0)
        return tls_err(err, r, "TLS");
    if ((r = gnutls_set_default_priority(c->tls)) < 0 ||
        (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->creds)) < 0)
        return tls_err(err, r, "TLS");
    if (server)
        gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
    else if (peer_name)
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, peer_name, strlen(peer_name));
    /* The chain must lead to the CA; the backup's certificate must name the backup. */
    gnutls_session_set_verify_cert(c->tls, server ? NULL : peer_name, 0);
    gnutls_transport_set_int(c->tls, c->fd);
    gnutls_handshake_set_timeout(c->tls, (unsigned)vmha_deadline_left_ms(dl));
    do {
        r = gnutls_handshake(c->tls);
    } while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0)
        return vmha_err_set(err, -EPROTO, "TLS handshake with %s failed: %s",
                            server ? "the primary" : peer_name, gnutls_strerror(r));
    return 0;
}

ssize_t chan_read(struct chan *c, void *buf, size_t n, const struct vmha_deadline *dl)
{
    for (;;) {
        if (!c->tls || gnutls_record_check_pending(c->tls) == 0) {
            int w = wait_for(c->fd, POLLIN, dl);
            if (w < 0)
                return w;
        }
        if (!c->tls) {
            ssize_t got = read(c->fd, buf, n);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            return got < 0 ? -errno : got;
        }
        ssize_t got = gnutls_record_recv(c->tls, buf, n);
        if (got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED)
            continue;
        if (got == GNUTLS_E_PREMATURE_TERMINATION)
            return 0; /* closed without a TLS goodbye: the trailer decides */
        return got < 0 ? -EPROTO : got;
    }
}

int chan_write_all(struct chan *c, const void *buf, size_t n, const struct vmha_deadline *dl)
{
    const char *p = buf;
    while (n) {
        ssize_t w = c->tls ? gnutls_record_send(c->tls, p, n)
                           : send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (!c->tls && w < 0 && (errno == EAGAIN || errno == EINTR))
            w = GNUTLS_E_AGAIN;
        else if (!c->tls && w < 0)
            return -errno;
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
            int r = wait_for(c->fd, POLLOUT, dl);
            if (r < 0)
                return r;
            continue;
        }
        if (w < 0)
            return -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int chan_shutdown_wr(struct chan *c)
{
    if (c->tls)
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    return shutdown(c->fd, SHUT_WR);
}

void chan_close(struct chan *c)
{
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->creds)
        gnutls_certificate_free_credentials(c->creds);
    if (c->fd >= 0)
        close(c->fd);
    *c = (struct chan){.fd = -1};
}
