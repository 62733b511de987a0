/* Checkpoint replication (Remus) of a guest between two hosts.
 *
 * The primary runs the guest and vmha-replicator in "send" mode: every interval it takes a
 * checkpoint (hv ckpt_take: the guest paused at a consistent point), streams it to the
 * backup's vmha-replicator in "receive" mode, and once the backup has acknowledged that
 * checkpoint as committed it releases the network output the guest produced before it and
 * resumes the guest. The backup keeps the last committed checkpoint as a file; promotion
 * restores the guest from it. docs/remus-design.md has the reasoning.
 *
 * Never undoing output: when the primary has to let output out without a committed
 * checkpoint (its backup is gone), it first marks the backup's checkpoints stale, in the
 * cluster (node attribute vmha-stale-<guest> = "<session> <epoch>" on the backup's node),
 * and waits until the CIB shows the mark. A backup promotes from its checkpoint only if no
 * mark covers it; otherwise it boots the guest afresh, which restarts it but rolls nothing
 * back that a client saw. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vmha/common.h"

/* The stream of one epoch, on a TCP connection of its own:
 *   "VMHA-CKPT 2 <guest> <session> <epoch>\n"  the header line (session: 16 hex digits)
 *   the receiver answers "GO\n" once it is ready to take it
 *   the body (libvirt engine; below)
 *   "VMHA-END" + epoch as 8 big-endian bytes     the trailer: the checkpoint is whole
 * then the sender shuts its side down; the receiver commits the body and answers
 *   "ACK <epoch>\n"  (or "NAK <reason>\n").
 * The body (image.c), all numbers 8 bytes big-endian, is sections:
 *   "VMHA-RAM" flags, memory size, N; then N times: page number, REMUS_PAGE bytes
 *              (one or more; flag REMUS_BODY_FULL on the first: the memory is zero but for
 *              the pages that follow; otherwise they replace pages of the epoch before)
 *   "VMHA-DSK" length, disk records filling it: the writes the guest's disks completed in
 *              the epoch, in order (at most one such section, after the memory)
 *   "VMHA-NVR" length, the guest's UEFI variable store as it was at the pause, whole, when
 *              it changed since the checkpoint before (at most one, after the disks')
 *   "VMHA-DEV" length, the device state: what hv ckpt_take wrote (a save image without
 *              the guest's shared RAM); last.
 * A first checkpoint of a guest with writable disks starts with the disks' base, which the
 * backup writes to its disks as it comes (it holds no checkpoint from then on):
 *   "VMHA-DBS" N, each disk's size (N numbers); disk records; the end record.
 * A disk record: disk index (4 bytes), flags (4: REMUS_DREC_ZERO, no data follows), offset,
 * length (8 each), then length bytes. The end record has index REMUS_DREC_END, the rest 0.
 * A first checkpoint sends a full section while the guest still runs (a base: pages may
 * change under it), then, with the guest paused, the pages that differ from what it sent:
 * applied in order, the sections give the memory exactly as it was at the pause. */
#define REMUS_TRAILER_LEN 16
/* The secret the stream is authenticated with unless replication_key names another: the
 * one every node of a Corosync cluster holds. */
#define REMUS_KEY_DEFAULT "/etc/corosync/authkey"
#define REMUS_HEADER_MAX 256

struct remus_epoch_id {
    char guest[128];
    uint64_t session;
    uint64_t epoch;
};

int remus_header_format(const struct remus_epoch_id *id, char *buf, size_t size);
int remus_header_parse(const char *line, struct remus_epoch_id *ret, struct vmha_err *err);
void remus_trailer_make(uint64_t epoch, unsigned char out[REMUS_TRAILER_LEN]);
bool remus_trailer_ok(const unsigned char in[REMUS_TRAILER_LEN], uint64_t epoch);

/* The stale mark's value and its test: is the checkpoint (session, epoch) covered by mark
 * (NULL or "" = no mark)? An unreadable mark covers everything. */
void remus_stale_format(uint64_t session, uint64_t epoch, char *buf, size_t size);
bool remus_stale_covers(const char *mark, uint64_t session, uint64_t epoch);

/* Node attribute names for a guest. */
#define REMUS_ATTR_REPLICA "vmha-replica-" /* on the backup: "<address>:<port>" it listens on */
#define REMUS_ATTR_STALE "vmha-stale-"     /* on the backup: see above */
#define REMUS_ATTR_LAG "vmha-lag-"         /* on the primary: s since the last commit */
/* Permanent, on every node but the one that resumed the guest from a checkpoint: its copy
 * of the guest's disks is older than the guest's, and no boot may run from it. */
#define REMUS_ATTR_OUTDATED "vmha-disks-outdated-"

/* What a replicator says about itself in its status file (key=value lines, replaced
 * atomically at every change) in its directory rundir/remus/<guest>/. */
struct remus_status {
    char role[16];                     /* "primary" or "backup" */
    char state[16];                    /* primary: syncing, protected, degraded, demoted, failed;
                                          backup: listening, receiving, failed */
    char peer[256];                    /* primary: the backup it streams to */
    uint64_t session, epoch;           /* primary: last committed; backup: what ckpt.save holds */
    uint64_t committed_ms;             /* CLOCK_REALTIME ms of the last commit, 0 = none yet */
    uint64_t pause_ms, ckpt_ms, bytes; /* the last epoch: guest paused, stream time, size */
    uint64_t epochs, failures;
    uint64_t refused; /* backup: connections refused before they proved to be the primary */
    char auth[16];    /* how the stream is authenticated: "key", "x509" or "none" */
    char error[512];
};

int remus_status_write(const char *dir, const struct remus_status *s, struct vmha_err *err);
int remus_status_read(const char *dir, struct remus_status *ret, struct vmha_err *err);

/* The guest's configuration, copied into the backup's directory when it starts: what a
 * promotion without the cluster restores the checkpoint with. */
#define REMUS_CONFIG_COPY "config.xml"

/* The replicator's directory: rundir/remus/<guest>. */
void remus_dir(const char *rundir, const char *guest, char *buf, size_t size);
/* Whether the replicator of that mode ("send", "receive") runs for the directory: it holds
 * a lock on <mode>.pid. *pid is set when it runs. */
bool remus_running(const char *dir, const char *mode, int *pid);
/* The committed checkpoint the backup holds, by its identity in dir/ckpt.meta; -ENOENT
 * when there is none. */
int remus_checkpoint(const char *dir, uint64_t *session, uint64_t *epoch);

#define REMUS_PAGE 4096
/* The most device state one checkpoint carries (QEMU's stream without the shared RAM: the
 * devices, ROM and video memory). */
#define REMUS_DEV_MAX (256ull << 20)
#define REMUS_BODY_DEV "VMHA-DEV"
#define REMUS_BODY_RAM "VMHA-RAM"
#define REMUS_BODY_FULL 1u
#define REMUS_BODY_DISK "VMHA-DSK"
#define REMUS_BODY_DISKBASE "VMHA-DBS"
#define REMUS_DREC_LEN 24
#define REMUS_DREC_ZERO 1u
#define REMUS_DREC_END 0xffffffffu

/* A replicated guest's writable disks as this node's configuration names them (never as a
 * stream does: the stream only numbers them). */
#define REMUS_DISKS_MAX 8
#define REMUS_BODY_NVRAM "VMHA-NVR"
/* The device state as the chunks that changed since the checkpoint the backup holds
 * (remus/delta.c); the backup rebuilds the whole one before it commits. */
#define REMUS_BODY_DEVDELTA "VMHA-DDV"
#define REMUS_DELTA_CHUNK 4096
/* The largest UEFI variable store a checkpoint carries (OVMF's are 128 KiB to 4 MiB). */
#define REMUS_NVRAM_MAX (64u << 20)
/* Where a backup keeps the NVRAM of its checkpoint, beside ram and dev.save. */
#define REMUS_NVRAM_FILE "nvram"
struct remus_disk {
    char target[32]; /* "vda" */
    char path[1024];
    uint64_t size;
};
struct remus_disks {
    size_t n;
    struct remus_disk d[REMUS_DISKS_MAX];
};
/* Adds "TARGET=PATH" (a file or block device; its size read here). */
int remus_disks_add(struct remus_disks *ds, const char *spec, struct vmha_err *err);
/* The disk table a backup's directory records (file "disks"), which its journal is applied
 * with: write once when the receiver starts; read gives n = 0 when there is none. */
int remus_disks_save(const char *dir, const struct remus_disks *ds, struct vmha_err *err);
int remus_disks_load(const char *dir, struct remus_disks *ret, struct vmha_err *err);
/* Disk records (len bytes at p) checked against ds: each whole, its disk known, inside
 * it; with end, the last one is the end record (*used: the bytes up to and with it). */
int remus_drecs_check(const unsigned char *p, size_t len, const struct remus_disks *ds, bool end,
                      size_t *used, struct vmha_err *err);
/* Storage both nodes see: each node that holds a replica marks the directory of each disk
 * file (".vmha-<guest>.<node>"); a mark of another node there means the disk is shared, and
 * replication refuses it (-EMEDIUMTYPE, err names the node). */
int remus_disks_mark(const struct remus_disks *ds, const char *guest, const char *node,
                     struct vmha_err *err);
int remus_disks_shared(const struct remus_disks *ds, const char *guest, const char *node,
                       struct vmha_err *err);
/* Writes checked records to the disks. */
int remus_drecs_apply(const unsigned char *p, size_t len, const struct remus_disks *ds,
                      struct vmha_err *err);

struct remus_body {
    const unsigned char *dev; /* the device state, or with dev_delta its delta */
    uint64_t dev_len;
    bool dev_delta;
    const unsigned char *disk; /* the disk records, disk_len bytes (none: 0) */
    uint64_t disk_len;
    const unsigned char *nvram; /* the UEFI variable store when it changed (none: NULL) */
    uint64_t nvram_len;
    bool full;                  /* the first section is full: no epoch before it needed */
    uint64_t ram_size, npages;  /* npages: in all sections */
    const unsigned char *start; /* the first section, and the body's end */
    const unsigned char *end;
};

uint64_t remus_get_be64(const unsigned char *p);
void remus_put_be64(unsigned char *p, uint64_t v);
uint32_t remus_get_be32(const unsigned char *p);
void remus_put_be32(unsigned char *p, uint32_t v);
/* Checks a whole body (n bytes): sections, lengths, page numbers, disk records against
 * disks (NULL: none may come); points ret into it. */
int remus_dev_delta_make(const unsigned char *base, size_t base_len, const unsigned char *cur,
                         size_t cur_len, unsigned char **ret, size_t *ret_len);
int remus_dev_delta_check(const unsigned char *d, size_t len, struct vmha_err *err);
int remus_dev_delta_apply(const unsigned char *d, size_t len, const unsigned char *base,
                          size_t base_len, unsigned char **ret, size_t *ret_len,
                          struct vmha_err *err);
int remus_body_parse(const unsigned char *b, size_t n, const struct remus_disks *disks,
                     struct remus_body *ret, struct vmha_err *err);
/* Applies a committed epoch (dir/ckpt.jrnl) to dir/ram, dir/dev.save and the disks of
 * dir's disk table; 0 when there is none. Safe to repeat after an interruption. */
int remus_journal_apply(const char *dir, struct vmha_err *err);
/* Drops the checkpoint dir holds (its identity first): its disks are about to change. */
int remus_checkpoint_drop(const char *dir, struct vmha_err *err);
/* The committed checkpoint's two files, dir/dev.save and dir/ram (paths set), after applying a
 * pending journal: returns a lock that keeps them as they are until it is closed (for
 * hv_ckpt_restore), or -errno. */
int remus_checkpoint_files(const char *dir, char *dev, size_t dev_size, char *ram, size_t ram_size,
                           struct vmha_err *err);

/* CLOCK_REALTIME in ms: what the cluster's nodes agree on (commit times, lags). */
uint64_t remus_realtime_ms(void);

/* The target of QEMU's mirror of a replicated guest's disk (nbd.c): an NBD server with one
 * export of size bytes named name, holding no data. Each write (data NULL: zeroes) goes to
 * write, which may block (QEMU's write, and the guest's, waits) and returns 0 or -errno
 * (the error QEMU sees). io carries the bytes: read returns what it got (0 at EOF) or
 * -errno, write sends all or returns -errno. remus_nbd_serve returns 0 when the client
 * disconnected, -errno when it broke the protocol or the connection failed. */
#define REMUS_NBD_MAX_REQUEST (32u << 20)
struct remus_nbd_io {
    ssize_t (*read)(void *opaque, void *buf, size_t n);
    int (*write)(void *opaque, const void *buf, size_t n);
    void *opaque;
};
struct remus_nbd_export {
    const char *name;
    uint64_t size;
    int (*write)(void *opaque, uint64_t offset, const void *data, uint32_t len);
    void *opaque;
};
int remus_nbd_serve(const struct remus_nbd_io *io, const struct remus_nbd_export *e);
