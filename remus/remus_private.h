/* What the replicator's files share. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <gnutls/gnutls.h>

#include "vmha/remus.h"

/* A replication connection, in TLS when the guest asks for it (chan.c). */
struct chan {
    int fd;
    gnutls_session_t tls;
    gnutls_certificate_credentials_t creds;
};

/* Wraps c->fd in TLS (server: the backup), with libvirt's x509 credentials. */
int chan_tls(struct chan *c, bool server, const char *peer_name, const struct vmha_deadline *dl,
             struct vmha_err *err);
/* Bytes read (0 at EOF), or -errno; waits no longer than dl. */
ssize_t chan_read(struct chan *c, void *buf, size_t n, const struct vmha_deadline *dl);
int chan_write_all(struct chan *c, const void *buf, size_t n, const struct vmha_deadline *dl);
int chan_shutdown_wr(struct chan *c);
void chan_close(struct chan *c);

struct remus_ctx {
    const char *guest, *dir, *node; /* node: this node's cluster name */
    const char *uri;                /* send: the hypervisor */
    const char *listen;             /* receive: address:port */
    uint64_t interval_ms, timeout_ms;
    bool tls; /* replication_tls */
    FILE *stats; /* send --stats FILE: one line per committed epoch, for bench/ */
    struct remus_status st;
};

extern volatile sig_atomic_t remus_stop_requested, remus_demote_requested;

int remus_send(struct remus_ctx *x);
int remus_receive(struct remus_ctx *x);

/* The replication stream's ends: a connected socket to ADDRESS:PORT ([v6]:port), or one
 * listening there; -errno with err set. */
int remus_connect(const char *address, const struct vmha_deadline *dl, struct vmha_err *err);
int remus_listen(const char *address, struct vmha_err *err);
/* The node attribute by which the primary finds this backup: set (on) or removed. */
void remus_advertise(struct remus_ctx *x, bool on);
/* The backup (node name, replication address) that advertises a replica of the guest. */
bool remus_find_peer(struct remus_ctx *x, char *peer, size_t psize, char *addr, size_t asize);
/* Marks every replica of the guest stale from epoch on (session x->st.session) and waits until
 * the CIB shows each mark: only then may output go out that no checkpoint covers. */
int remus_mark_stale(struct remus_ctx *x, const char *peer, uint64_t epoch,
                     const struct vmha_deadline *dl, struct vmha_err *err);

/* A stale mark on peer from an earlier session would keep that replica from ever being
 * promoted, though this session's checkpoints cover all output since it began: it is
 * replaced by one that marks nothing of this session and all of any other, as before (so
 * what peer holds of an earlier session stays stale). Only the one primary writes marks. */
void remus_renew_mark(struct remus_ctx *x, const char *peer);

/* Xen's Remus through libxenlight (xen.c, in builds with the libxl backend). */
int remus_xen_send(struct remus_ctx *x);
int remus_xen_receive(struct remus_ctx *x);

/* Writes the status file (a failure to is logged, not fatal). */
void remus_publish(struct remus_ctx *x);
/* Records err as the replicator's final state "failed" and returns 1. */
int remus_fail(struct remus_ctx *x, const struct vmha_err *err);
