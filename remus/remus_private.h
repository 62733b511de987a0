/* What the replicator's files share. */
#pragma once

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <gnutls/gnutls.h>

#include "vmha/remus.h"

/* How the replication stream proves who sent it (chan.c).
 *   KEY   the default: TLS with a pre-shared key derived from a secret every node of the
 *         cluster holds (Corosync's authkey, or replication_key) and the guest's name; both
 *         ends prove they know it, and the stream is encrypted.
 *   X509  TLS with the x509 credentials of libvirt's TLS transport; the backup takes only a
 *         certificate that names a node of the cluster.
 *   NONE  replication_insecure=true, for a lab: anyone who reaches the port is believed. */
enum remus_auth { REMUS_AUTH_KEY, REMUS_AUTH_X509, REMUS_AUTH_NONE };
#define REMUS_PSK_LEN 32

/* A replication connection: a TCP socket, in TLS unless the guest is insecure. */
struct chan {
    int fd;
    gnutls_session_t tls;
    gnutls_certificate_credentials_t creds;
    gnutls_psk_client_credentials_t psk_client;
    gnutls_psk_server_credentials_t psk_server;
};

struct remus_ctx;
/* The primary's end: authenticates to the backup at address (host:port; with X509 its
 * certificate must carry the host) and authenticates it. */
int chan_client(struct chan *c, const struct remus_ctx *x, const char *address,
                const struct vmha_deadline *dl, struct vmha_err *err);
/* The backup's end, on a non-blocking socket: chan_server_start sets the session up,
 * chan_server_step advances its handshake whenever the socket is readable: 1 once the peer
 * is authenticated, 0 while it needs more, -errno (err set) when the peer is refused. */
int chan_server_start(struct chan *c, const struct remus_ctx *x, struct vmha_err *err);
int chan_server_step(struct chan *c, const struct remus_ctx *x, struct vmha_err *err);
/* Bytes read (0 at EOF), or -errno; waits no longer than dl. */
ssize_t chan_read(struct chan *c, void *buf, size_t n, const struct vmha_deadline *dl);
/* One line, newline included, NUL-terminated in buf, by dl: its length; -EPIPE when the peer
 * closed before a whole line, -EMSGSIZE when it is longer than size - 1, or -errno. */
ssize_t chan_read_line(struct chan *c, char *buf, size_t size, const struct vmha_deadline *dl);
int chan_write_all(struct chan *c, const void *buf, size_t n, const struct vmha_deadline *dl);
int chan_shutdown_wr(struct chan *c);
void chan_close(struct chan *c);
/* Reads the cluster key (key_file) and derives the guest's pre-shared key into x->psk. */
int chan_load_key(struct remus_ctx *x, const char *key_file, struct vmha_err *err);
const char *remus_auth_name(enum remus_auth a);

/* The backup's door (door.c): its listening socket and the connections still proving
 * themselves. */
#define REMUS_PENDING_MAX 16
/* How long a proven primary has to send its header. */
#define REMUS_HEADER_MS 2000
struct remus_pending {
    struct chan ch;
    struct vmha_deadline dl;
    bool ready; /* authenticated, not yet taken */
    char from[64];
};
struct remus_door {
    int lfd;
    size_t n;
    struct remus_pending pend[REMUS_PENDING_MAX];
};

/* A library's plain stream carried over a channel (pump.c). */
struct remus_pump {
    struct chan ch;
    int local; /* the pump's end of the library's socket pair */
    uint64_t timeout_ms;
    pthread_t out, in;
};
/* Takes ch over (it is the pump's until remus_pump_stop) and gives the library's end of the
 * stream in *ret_fd (the caller's to close). */
int remus_pump_start(struct remus_pump *p, struct chan *ch, uint64_t timeout_ms, int *ret_fd,
                     struct vmha_err *err);
/* Ends both directions, waits for the threads, closes the channel. */
void remus_pump_stop(struct remus_pump *p);

/* The primary's mirror of the guest's disks (mirror.c): QEMU writes each disk synchronously
 * into an NBD export of this process, and every write lands in the log, as disk records, in
 * QEMU's order. The log holds at most REMUS_MIRROR_LOG_MAX bytes: past that the guest's
 * writes wait for the next checkpoint, which the sender then takes early. */
#define REMUS_MIRROR_LOG_MAX (64u << 20)
struct remus_mirror;
struct remus_mirror_listener {
    struct remus_mirror *m;
    uint32_t disk;
    int lfd;
    pthread_t thread;
    bool started;
};
struct remus_mirror {
    const char *guest, *dir;
    const struct remus_disks *disks;
    int qemu_pid; /* only this process may connect */
    struct remus_mirror_listener listeners[REMUS_DISKS_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *log;
    size_t len, cap, limit;
    uint64_t writes;
    bool pausing, mirrored;
    atomic_bool stopping;
};

struct remus_ctx {
    const char *guest, *dir, *node; /* node: this node's cluster name */
    const char *uri;                /* send: the hypervisor */
    const char *listen;             /* receive: address:port */
    uint64_t interval_ms, timeout_ms;
    enum remus_auth auth;
    unsigned char psk[REMUS_PSK_LEN]; /* auth KEY: this guest's pre-shared key */
    uint64_t memory;                  /* receive: the guest's memory in bytes, as configured */
    const char *config;               /* Xen receive: the guest's xl.cfg, the replica's config */
    const char *pki;                  /* auth X509: where libvirt's TLS files are (/etc/pki) */
    FILE *stats;              /* send --stats FILE: one line per committed epoch, for bench/ */
    struct remus_disks disks; /* the guest's writable disks (--disk) */
    const char *local_dir;    /* receive: this node's own directory of the guest, on disk */
    bool nvram;               /* receive: the guest has a UEFI variable store (--nvram) */
    struct remus_status st;
};

extern volatile sig_atomic_t remus_stop_requested, remus_demote_requested;

/* Listens on x->listen. */
int remus_door_open(struct remus_ctx *x, struct remus_door *d, struct vmha_err *err);
/* Waits up to ms for a peer that proves to be the cluster's primary: 1 with *ret its
 * channel (the caller's to close), 0 when none came; strangers are refused and counted. */
int remus_door_wait(struct remus_ctx *x, struct remus_door *d, uint64_t ms, struct chan *ret);
void remus_door_close(struct remus_door *d);

/* One epoch from a proven primary on ch (receiver.c): header by hdl, body, trailer; commit
 * into x->dir and answer ACK. -errno with err set when refused (the caller answers NAK). */
int remus_receive_epoch(struct remus_ctx *x, struct chan *ch, const struct vmha_deadline *hdl,
                        struct vmha_err *err);

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

struct hv;
/* Exports of the guest's disks (x->disks) for its QEMU (qemu_pid). */
int remus_mirror_open(struct remus_mirror *m, struct remus_ctx *x, int qemu_pid,
                      struct vmha_err *err);
/* (Re)starts QEMU's mirrors with an empty log: the disks are copied whole again. */
int remus_mirror_start(struct remus_mirror *m, struct hv *hv, struct vmha_err *err);
/* 1 once every disk has been copied whole, 0 while copying, -errno when a mirror failed. */
int remus_mirror_ready(struct remus_mirror *m, struct hv *hv, struct vmha_err *err);
/* Ends QEMU's mirrors (the exports stay). */
void remus_mirror_stop(struct remus_mirror *m, struct hv *hv);
/* While the guest is being paused, writes never wait for room in the log. */
void remus_mirror_pausing(struct remus_mirror *m, bool on);
/* The log so far (the caller frees it), emptied: its length. */
size_t remus_mirror_take(struct remus_mirror *m, unsigned char **ret);
size_t remus_mirror_pending(struct remus_mirror *m);
void remus_mirror_close(struct remus_mirror *m, struct hv *hv);

/* A hypervisor's own Remus (native.c; Xen's, through libxenlight). */
int remus_native_send(struct remus_ctx *x);
int remus_native_receive(struct remus_ctx *x);

/* The session (session.c), below the engines: main.c and the engines call it, it calls
 * neither. */
/* Forks: the parent waits for the child's first word and returns the exit code; the child
 * returns -1 and goes on, detached. */
int remus_session_detach(void);
/* Tells the waiting parent how the start went (once; nothing in the foreground). */
void remus_session_ready(const char *msg);
/* SIGTERM and SIGINT set remus_stop_requested, SIGUSR1 remus_demote_requested. */
void remus_session_signals(void);
/* The lock that says "this replicator lives", on dir/<mode>.pid, held while the process
 * lives: -EBUSY when another holds it. */
int remus_session_lock(const char *dir, const char *mode, struct vmha_err *err);
/* Writes the status file (a failure to is logged, not fatal); the first one says the
 * replicator is ready. */
void remus_publish(struct remus_ctx *x);
/* Records err as the replicator's final state "failed" and returns 1. */
int remus_fail(struct remus_ctx *x, const struct vmha_err *err);
