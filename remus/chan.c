/* The replication connection, authenticated. A checkpoint decides what a promotion runs, as
 * root, on the backup, and its ACK lets the primary release output: whoever can speak on it
 * must be the cluster. By default both ends prove they hold the cluster's key (TLS with a
 * pre-shared key derived from it for this guest: every byte authenticated and encrypted,
 * fresh keys per connection, so nothing recorded can be played again); with replication_tls
 * they present x509 certificates of libvirt's CA instead, each naming a node of the cluster. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "remus_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

/* libvirt's TLS files, under x->pki (default /etc/pki). */
#define TLS_CA "CA/cacert.pem"
#define TLS_SERVER_CERT "libvirt/servercert.pem"
#define TLS_SERVER_KEY "libvirt/private/serverkey.pem"
#define TLS_CLIENT_CERT "libvirt/clientcert.pem"
#define TLS_CLIENT_KEY "libvirt/private/clientkey.pem"
/* Ephemeral (EC)DHE with the pre-shared key: a stolen key does not open recorded streams. */
#define PSK_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+DHE-PSK"
/* What the key is derived for: a guest's key opens no other guest's replica. */
#define PSK_LABEL "vmha replication 1"

const char *remus_auth_name(enum remus_auth a)
{
    return a == REMUS_AUTH_KEY ? "key" : a == REMUS_AUTH_X509 ? "x509" : "none";
}

int chan_load_key(struct remus_ctx *x, const char *key_file, struct vmha_err *err)
{
    uint8_t *key = NULL;
    size_t len = 0;
    int r = vmha_secret_read("replication key", key_file, &key, &len, err);
    if (r < 0)
        return r;
    size_t glen = strlen(x->guest);
    _cleanup_free_ char *msg = malloc(sizeof(PSK_LABEL) + glen);
    if (msg) {
        memcpy(msg, PSK_LABEL, sizeof(PSK_LABEL)); /* with its NUL: label and name apart */
        memcpy(msg + sizeof(PSK_LABEL), x->guest, glen);
        r = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, len, msg, sizeof(PSK_LABEL) + glen, x->psk);
    }
    explicit_bzero(key, len);
    free(key);
    if (!msg || r < 0)
        return vmha_err_set(err, -ENOMEM, "cannot derive the replication key");
    return 0;
}

static int tls_err(struct vmha_err *err, int r, const char *what)
{
    return vmha_err_set(err, -EPROTO, "%s: %s", what, gnutls_strerror(r));
}

static int x509_creds(struct chan *c, const struct remus_ctx *x, bool server, struct vmha_err *err)
{
    int r = gnutls_certificate_allocate_credentials(&c->creds);
    if (r < 0)
        return tls_err(err, r, "TLS");
    const char *pki = x->pki ? x->pki : "/etc/pki";
    char ca[4200], cert[4200], key[4200];
    if (snprintf(ca, sizeof(ca), "%s/" TLS_CA, pki) >= (int)sizeof(ca) ||
        snprintf(cert, sizeof(cert), "%s/%s", pki, server ? TLS_SERVER_CERT : TLS_CLIENT_CERT) >=
            (int)sizeof(cert) ||
        snprintf(key, sizeof(key), "%s/%s", pki, server ? TLS_SERVER_KEY : TLS_CLIENT_KEY) >=
            (int)sizeof(key))
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", pki);
    if ((r = gnutls_certificate_set_x509_trust_file(c->creds, ca, GNUTLS_X509_FMT_PEM)) <= 0)
        return vmha_err_set(err, -ENOENT, "replication_tls: cannot load the CA certificate %s: %s",
                            ca, r < 0 ? gnutls_strerror(r) : "no certificate in it");
    if ((r = gnutls_certificate_set_x509_key_file(c->creds, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
        return vmha_err_set(err, -ENOENT, "replication_tls: cannot load %s and %s: %s", cert, key,
                            gnutls_strerror(r));
    return gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->creds) < 0
               ? vmha_err_set(err, -EPROTO, "TLS: cannot use the certificates")
               : 0;
}

static int psk_lookup(gnutls_session_t s, const char *identity, gnutls_datum_t *key)
{
    const struct remus_ctx *x = gnutls_session_get_ptr(s);
    /* The primary names the guest it replicates; any other name is not this replica's. */
    if (strcmp(identity, x->guest) != 0 || !(key->data = gnutls_malloc(REMUS_PSK_LEN)))
        return -1;
    memcpy(key->data, x->psk, REMUS_PSK_LEN);
    key->size = REMUS_PSK_LEN;
    return 0;
}

/* The session, its credentials and its priorities; the handshake is the caller's. */
static int session_new(struct chan *c, const struct remus_ctx *x, bool server, struct vmha_err *err)
{
    int r = gnutls_init(&c->tls, server ? GNUTLS_SERVER : GNUTLS_CLIENT);
    if (r < 0)
        return tls_err(err, r, "TLS");
    gnutls_session_set_ptr(c->tls, (void *)x);
    gnutls_transport_set_int(c->tls, c->fd);
    if (x->auth == REMUS_AUTH_X509) {
        if ((r = gnutls_set_default_priority(c->tls)) < 0)
            return tls_err(err, r, "TLS");
        return x509_creds(c, x, server, err);
    }
    if ((r = gnutls_priority_set_direct(c->tls, PSK_PRIORITY, NULL)) < 0)
        return tls_err(err, r, "TLS");
    if (server) {
        if ((r = gnutls_psk_allocate_server_credentials(&c->psk_server)) < 0)
            return tls_err(err, r, "TLS");
        gnutls_psk_set_server_credentials_function(c->psk_server, psk_lookup);
        r = gnutls_credentials_set(c->tls, GNUTLS_CRD_PSK, c->psk_server);
    } else {
        gnutls_datum_t key = {.data = (unsigned char *)x->psk, .size = REMUS_PSK_LEN};
        if ((r = gnutls_psk_allocate_client_credentials(&c->psk_client)) < 0 ||
            (r = gnutls_psk_set_client_credentials(c->psk_client, x->guest, &key,
                                                   GNUTLS_PSK_KEY_RAW)) < 0)
            return tls_err(err, r, "TLS");
        r = gnutls_credentials_set(c->tls, GNUTLS_CRD_PSK, c->psk_client);
    }
    return r < 0 ? tls_err(err, r, "TLS") : 0;
}

int chan_client(struct chan *c, const struct remus_ctx *x, const char *address,
                const struct vmha_deadline *dl, struct vmha_err *err)
{
    if (x->auth == REMUS_AUTH_NONE)
        return 0;
    char host[256], port[16];
    int r = vmha_split_hostport(address, host, sizeof(host), port, sizeof(port));
    if (r < 0)
        return vmha_err_set(err, r, "replica address %s is not host:port or [v6]:port", address);
    r = session_new(c, x, false, err);
    if (r < 0)
        return r;
    if (x->auth == REMUS_AUTH_X509) {
        /* The chain must lead to the CA; the backup's certificate must name the backup. */
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host, strlen(host));
        gnutls_session_set_verify_cert(c->tls, host, 0);
    }
    gnutls_handshake_set_timeout(c->tls, (unsigned)vmha_deadline_left_ms(dl));
    do {
        r = gnutls_handshake(c->tls);
    } while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0)
        return vmha_err_set(err, -EACCES,
                            "the replica at %s did not prove it is this cluster's "
                            "(%s): %s",
                            host,
                            x->auth == REMUS_AUTH_KEY ? "does it hold the "
                                                        "same cluster key?"
                                                      : "TLS",
                            gnutls_strerror(r));
    return 0;
}

int chan_server_start(struct chan *c, const struct remus_ctx *x, struct vmha_err *err)
{
    if (x->auth == REMUS_AUTH_NONE)
        return 0;
    int r = session_new(c, x, true, err);
    if (r < 0)
        return r;
    if (x->auth == REMUS_AUTH_X509) {
        gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert(c->tls, NULL, 0); /* the chain; the name below */
    }
    return 0;
}

/* The primary's certificate must name a node of the cluster. The names are read again when
 * one does not match, at most every 10 s (a node that just joined). */
static int peer_is_node(struct chan *c, struct vmha_err *err)
{
    static char **names;
    static uint64_t read_at;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(c->tls, &n);
    gnutls_x509_crt_t crt;
    if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0)
        return vmha_err_set(err, -EACCES, "the peer presented no certificate");
    int r = -EACCES;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0) {
        for (int pass = 0; pass < 2 && r < 0; pass++) {
            for (size_t i = 0; names && names[i] && r < 0; i++)
                if (gnutls_x509_crt_check_hostname(crt, names[i]))
                    r = 0;
            if (r == 0 || (read_at && vmha_now_ms() - read_at < 10000))
                break;
            struct cluster_view v = {0};
            struct vmha_deadline dl = vmha_deadline_in(3000);
            if (cluster_read(&dl, &v, &(struct vmha_err){0}) < 0)
                break;
            read_at = vmha_now_ms();
            for (size_t i = 0; names && names[i]; i++)
                free(names[i]);
            free(names);
            names = calloc(v.n + 1, sizeof(char *));
            for (size_t i = 0; names && i < v.n; i++)
                names[i] = strdup(v.nodes[i].name);
            cluster_view_clear(&v);
        }
    }
    gnutls_x509_crt_deinit(crt);
    return r < 0 ? vmha_err_set(err, -EACCES,
                                "the peer's certificate names no node of this "
                                "cluster")
                 : 0;
}

int chan_server_step(struct chan *c, const struct remus_ctx *x, struct vmha_err *err)
{
    if (x->auth == REMUS_AUTH_NONE)
        return 1;
    int r = gnutls_handshake(c->tls);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal(r)))
        return 0;
    if (r < 0)
        return vmha_err_set(err, -EACCES, "it did not prove it is this cluster's primary (%s)",
                            gnutls_strerror(r));
    if (x->auth == REMUS_AUTH_X509 && (r = peer_is_node(c, err)) < 0)
        return r;
    return 1;
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

ssize_t chan_read_line(struct chan *c, char *buf, size_t size, const struct vmha_deadline *dl)
{
    /* A byte at a time: what follows the line (a checkpoint's body) is not this call's. */
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = chan_read(c, buf + len, 1, dl);
        if (n <= 0) {
            buf[len] = '\0';
            return n < 0 ? n : -EPIPE;
        }
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    return len && buf[len - 1] == '\n' ? (ssize_t)len : -EMSGSIZE;
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
    if (c->psk_client)
        gnutls_psk_free_client_credentials(c->psk_client);
    if (c->psk_server)
        gnutls_psk_free_server_credentials(c->psk_server);
    if (c->fd >= 0)
        close(c->fd);
    *c = (struct chan){.fd = -1};
}
