/* The hypervisor interface, the one door to a hypervisor: the agent, the migration policy,
 * Remus and the boot-state code never see a hypervisor API, nor which backend serves them.
 * A backend (libvirt, libxl) is chosen by the hypervisor URI; what it can do is asked as a
 * feature (hv_can), and an operation it lacks answers -EOPNOTSUPP naming the backend. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmha/common.h"

/* Where a guest is, as far as the cluster cares. */
enum hv_state {
    HV_STATE_ABSENT,   /* not known to this host at all */
    HV_STATE_SHUTOFF,  /* defined here, not running */
    HV_STATE_RUNNING,  /* running, or blocked in the hypervisor */
    HV_STATE_PAUSED,   /* suspended: still occupies the host */
    HV_STATE_SHUTDOWN, /* shutting down: still running until it is off */
    HV_STATE_CRASHED,  /* crashed and left in place */
    HV_STATE_PMSUSPENDED,
    HV_STATE_INVALID = -22, /* -EINVAL */
};

const char *hv_state_to_string(enum hv_state s);

/* What a guest's configuration says, independent of any host. */
/* A disk the guest can write to (not read-only, not a CD-ROM). */
struct hv_disk {
    char *target; /* the guest's name for it: "vda" */
    char *source; /* file or block device; NULL for network and volume disks */
    char *format; /* driver type: "raw", "qcow2"; NULL when not given */
    bool block;   /* source is a block device */
    bool shareable;
};

struct hv_guest_config {
    char *name;
    char uuid[37];   /* canonical text form, "" when the config names none */
    char *virt_type; /* e.g. "qemu", "kvm", "xen" */
    char *arch;
    char *machine; /* machine type, e.g. "pc-i440fx-7.2", "q35" */
    char *kernel;  /* direct kernel boot: kernel, initrd, command line */
    char *initrd;
    char *cmdline;
    char *loader; /* UEFI firmware code */
    char *nvram;  /* UEFI variable store of this guest */
    char *nvram_template;
    bool writable_disks;   /* a disk the guest can write to (not read-only, not a CD-ROM) */
    struct hv_disk *disks; /* those disks (libvirt) */
    size_t ndisks;
    bool nics;               /* it has a network interface */
    bool vhost_nics;         /* a NIC QEMU would run with vhost-net: virtio on a kvm domain
                                without <driver name='qemu'/> (libvirt) */
    unsigned nic_queues;     /* the most queues a NIC asks for (<driver queues='N'/>), 0 = 1 */
    bool shared_file_memory; /* its RAM is one shared file (libvirt; no NUMA cells) */
    uint64_t memory;         /* its memory in bytes (libvirt's <memory>), 0 when not known */
};

void hv_guest_config_clear(struct hv_guest_config *c);
/* The hypervisor family a config asks for, as the migration policy names it: "qemu" for
 * libvirt's qemu and kvm domain types, otherwise the type itself ("xen"), "" if none. */
const char *hv_family_of(const struct hv_guest_config *c);

struct hv_guest_info {
    char name[256];
    char uuid[37];
    enum hv_state state;
    bool persistent;
    bool powered_off;    /* SHUTOFF because the guest powered itself off (or rebooted with
                            on_reboot=destroy), not destroyed, crashed or never started */
    uint64_t memory_kib; /* while it exists: its memory (libxl only; 0 = not known) */
};

/* What an install boot lays over the persistent configuration. NULL fields keep it. */
struct hv_boot_override {
    const char *kernel, *initrd, *cmdline;
    const char *media; /* install medium (ISO image), booted first */
};

/* Hypervisor family and versions, for the migration policy. Versions are major*1000000 +
 * minor*1000 + micro. */
struct hv_caps {
    char family[16]; /* "qemu", "xen", ... */
    uint64_t hv_version;
    uint64_t mgmt_version; /* libvirt's own version, or libxenlight's */
    char **machine_types;  /* NULL-terminated, canonical names and aliases */
    char hostname[256];
};

void hv_caps_clear(struct hv_caps *caps);

struct hv_progress {
    uint64_t elapsed_ms;
    uint64_t data_total;
    uint64_t data_processed;
    uint64_t data_remaining;
    uint64_t dirty_pages_per_s;    /* 0 when not known yet */
    uint64_t expected_downtime_ms; /* 0 when not known */
};

struct hv_migrate_params {
    const char *dest_uri;   /* the target's management URI (libvirt URI, or ssh://host for libxl) */
    const char *data_uri;   /* where the guest's memory goes, NULL for the hypervisor default */
    uint64_t bandwidth_mib; /* MiB/s, 0 = unlimited */
    uint64_t max_downtime_ms; /* 0 = hypervisor default */
    /* Called every poll_ms while the migration runs; returning false cancels it. */
    bool (*progress)(const struct hv_progress *p, void *opaque);
    void *opaque;
    uint64_t poll_ms;
    /* When to give up on a step that reports no progress (0: the backend's own limit). */
    struct vmha_deadline deadline;
};

/* One checkpoint, as the hypervisor measured it. */
struct hv_ckpt_stats {
    uint64_t bytes;     /* the stream's size */
    uint64_t paused_ms; /* the guest's pause inside the hypervisor (its "downtime") */
    uint64_t total_ms;  /* from the start of the stream to the guest paused at its end */
};

/* A backend (libvirt, libxl), chosen by a hypervisor URI. */
struct hv_backend;
/* An open connection to a hypervisor through its backend (hv_open, hv_close). */
struct hv;

/* What a backend can do beyond the lifecycle every backend has (lookup, define, start, stop,
 * live migration, capabilities). */
enum hv_feature {
    HV_FEAT_NVRAM = 1u << 0,        /* keeps a guest's UEFI variables: hv_nvram_path */
    HV_FEAT_INSTALL_BOOT = 1u << 1, /* one-off install boots: hv_oneoff_config, start's oneoff */
    HV_FEAT_JOB_PROGRESS = 1u << 2, /* a running migration's progress: hv_job_progress */
    HV_FEAT_CKPT = 1u << 3,         /* checkpoints for vmha's replication engine: hv_ckpt_* */
    HV_FEAT_NATIVE_REMUS = 1u << 4, /* the hypervisor's own Remus: hv_remus_*, hv_replica_* */
    HV_FEAT_DISK_MIRROR = 1u << 5,  /* disks mirrored with synchronous writes: hv_mirror_* */
};

/* The backend that serves a hypervisor URI: "libxl" (or "libxl:...") for Xen through
 * libxenlight, anything else is a libvirt URI. -EOPNOTSUPP when vmha was built without it. */
int hv_backend_for_uri(const char *uri, const struct hv_backend **ret, struct vmha_err *err);
const char *hv_backend_name(const struct hv_backend *b); /* for messages, never for decisions */
/* The daemon a connection goes through ("libvirtd"), NULL when there is none: for hints. */
const char *hv_backend_daemon(const struct hv_backend *b);
bool hv_backend_can(const struct hv_backend *b, enum hv_feature f);

/* Pure: parse a guest configuration text. */
int hv_config_parse(const struct hv_backend *b, const char *text, struct hv_guest_config *ret,
                    struct vmha_err *err);
/* Pure (HV_FEAT_INSTALL_BOOT): the one-off configuration of an install boot: config_text with
 * o laid over it, the UUID set to uuid (the defined guest's) and a reboot ending the guest, so
 * an installer that reboots at the end finishes the install like one that powers off. */
int hv_oneoff_config(const struct hv_backend *b, const char *config_text,
                     const struct hv_boot_override *o, const char *uuid, char **ret,
                     struct vmha_err *err);
/* The migration target's URI for a node, as a template with %n for the node's name, derived
 * from the source's hypervisor URI and a transport ("ssh", "tls", "tcp"). */
int hv_migrate_target_template(const struct hv_backend *b, const char *uri, const char *transport,
                               char *ret, size_t size, struct vmha_err *err);
/* Whether a migration target URI (expanded) is one this backend migrates to: -EINVAL with
 * the form it takes otherwise. */
int hv_migrate_target_check(const struct hv_backend *b, const char *target, struct vmha_err *err);
/* Whether this backend can replicate the guest (what its engine needs of the configuration),
 * with tls the stream's protection asked for: -EOPNOTSUPP with the reason and the fix. */
int hv_replication_check(const struct hv_backend *b, const struct hv_guest_config *cfg, bool tls,
                         struct vmha_err *err);

/* Opens a connection; every call on it must give up by the deadline. A hypervisor that does
 * not accept the connection within a sixth of the time left (5 s at least) is reported as
 * hung (-ETIMEDOUT) rather than waited for. */
int hv_open(const char *uri, const struct vmha_deadline *dl, struct hv **ret, struct vmha_err *err);
void hv_close(struct hv *h);
void hv_closep(struct hv **h);
#define _cleanup_hv_ __attribute__((cleanup(hv_closep)))
const struct hv_backend *hv_backend_of(const struct hv *h);
bool hv_can(const struct hv *h, enum hv_feature f);

int hv_capabilities(struct hv *h, struct hv_caps *ret, struct vmha_err *err);
/* Guest lookup by name or UUID: -ENOENT when this host does not know it. */
int hv_lookup(struct hv *h, const char *name_or_uuid, struct hv_guest_info *ret,
              struct vmha_err *err);
/* The configuration the guest runs with here (machine type expanded), or its definition when
 * it does not run. */
int hv_current_config(struct hv *h, const char *name, struct hv_guest_config *ret,
                      struct vmha_err *err);
/* The guest's running job (a migration), -ENOENT when there is none. */
int hv_job_progress(struct hv *h, const char *name, struct hv_progress *ret, struct vmha_err *err);
int hv_define(struct hv *h, const char *config_text, struct vmha_err *err);
/* Removes the persistent definition, keeping the NVRAM file (boot/ owns it). */
int hv_undefine(struct hv *h, const char *name, struct vmha_err *err);
/* Starts the defined guest; with oneoff_config, boots that once while the persistent
 * definition stays as it is (an install boot). */
int hv_start(struct hv *h, const char *name, const char *oneoff_config, struct vmha_err *err);
int hv_resume(struct hv *h, const char *name, struct vmha_err *err);
/* Asks the guest to power off; returns at once. mode: NULL, "acpi", "agent", ... */
int hv_shutdown(struct hv *h, const char *name, const char *mode, struct vmha_err *err);
int hv_destroy(struct hv *h, const char *name, struct vmha_err *err);
/* Live migration to another host; blocks until done, failed or cancelled. On failure the
 * guest keeps running here. */
int hv_migrate(struct hv *h, const char *name, const struct hv_migrate_params *p,
               struct vmha_err *err);
/* Where the running or defined guest keeps its NVRAM on this host. */
int hv_nvram_path(struct hv *h, const char *name, char **ret, struct vmha_err *err);

/* Disk mirrors (HV_FEAT_DISK_MIRROR): from hv_mirror_start on, every write the guest makes to
 * its disk target ("vda") completes only once the NBD export of that name on the unix
 * socket has it too, and the disk's content is copied there in the background.
 * hv_mirror_ready: 1 once the whole disk has been copied, 0 while copying, -errno when the
 * mirror has ended (it failed). hv_mirror_stop ends it; the guest keeps its own disk. */
int hv_mirror_start(struct hv *h, const char *name, const char *target, const char *socket,
                    struct vmha_err *err);
int hv_mirror_ready(struct hv *h, const char *name, const char *target, struct vmha_err *err);
int hv_mirror_stop(struct hv *h, const char *name, const char *target, struct vmha_err *err);

/* Checkpoints for vmha's replication engine (HV_FEAT_CKPT). An epoch: hv_ckpt_take streams a
 * consistent checkpoint and leaves the guest paused; once the backup holds it,
 * hv_ckpt_release lets out the network output the guest produced before it, and hv_resume
 * continues the guest. */
/* Holds the guest's network output from now on (installing the buffer once). */
int hv_ckpt_hold(struct hv *h, const char *name, struct vmha_err *err);
/* Sends everything held so far; with stop, removes the buffer (output flows freely). */
int hv_ckpt_release(struct hv *h, const char *name, bool stop, struct vmha_err *err);
/* Streams the guest's device state into fd, without the memory hv_ckpt_memory shares, and
 * returns with the guest paused at the checkpoint. On failure the guest runs. */
int hv_ckpt_take(struct hv *h, const char *name, int fd, const struct vmha_deadline *dl,
                 struct hv_ckpt_stats *ret, struct vmha_err *err);
/* A read-only descriptor of the running guest's RAM (a shared file), to map, and the process
 * that runs the guest (the memory is the guest's while it lives); called when replication
 * starts (it also undoes what a checkpoint cut short left set). */
int hv_ckpt_memory(struct hv *h, const char *name, int *fd, int *pid, struct vmha_err *err);
/* Creates the guest on this host, paused, from a checkpoint: the device state hv_ckpt_take
 * wrote (dev_path) and the memory as a raw file (ram_path, the memory's size), with
 * config_text (the guest's own configuration: whatever configuration the checkpoint
 * carries is never used; it must name the same guest). */
int hv_ckpt_restore(struct hv *h, const char *dev_path, const char *ram_path,
                    const char *config_text, struct vmha_err *err);

/* Pure (HV_FEAT_CKPT): the image hv_ckpt_restore restores from, written to out: the device
 * state hv_ckpt_take wrote (dev, dev_len bytes) with the memory (ram, ram_size bytes) put
 * back in. Both came over the network: anything malformed is -EPROTO. */
int hv_ckpt_image(const struct hv_backend *b, const unsigned char *dev, size_t dev_len,
                  const unsigned char *ram, size_t ram_size, FILE *out, struct vmha_err *err);

/* The hypervisor's own Remus (HV_FEAT_NATIVE_REMUS), on a connected socket fd. The primary's
 * side returns only when replication ends, with the guest suspended (hv_resume brings it
 * back). The backup's side returns when the stream ends, leaving the last complete
 * checkpoint as a paused replica domain (its name in ret_name); hv_replica_promote runs
 * that replica as the guest. The replica is made with config_text, the guest's own
 * configuration, never with the one the stream carries, which must be of the same guest. */
int hv_remus_send(struct hv *h, const char *name, int fd, uint64_t interval_ms,
                  const struct vmha_deadline *dl, struct vmha_err *err);
int hv_remus_receive(struct hv *h, int fd, const char *config_text, const struct vmha_deadline *dl,
                     char *ret_name, size_t size, struct vmha_err *err);
/* Whether the guest is suspended right now (Remus suspends it for each checkpoint; the first
 * suspension ends the initial live copy): 1, 0, or -errno. *cache keeps the backend's handle
 * of the guest between calls (start with UINT32_MAX). */
int hv_remus_suspended(struct hv *h, const char *name, uint32_t *cache);
/* The backup's replica: promote runs it as the guest (-ENOENT when there is none), discard
 * removes it (0 when there is none). */
int hv_replica_promote(struct hv *h, const char *name, struct vmha_err *err);
int hv_replica_discard(struct hv *h, const char *name, struct vmha_err *err);
