/* The hypervisor interface: one struct of operations per backend (libvirt, libxl), so that the
 * agent, the migration policy, Remus and the boot-state code never see a hypervisor API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

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
struct hv_guest_config {
    char *name;
    char uuid[37]; /* canonical text form, "" when the config names none */
    char *virt_type; /* e.g. "qemu", "kvm", "xen" */
    char *arch;
    char *machine; /* machine type, e.g. "pc-i440fx-7.2", "q35" */
    char *kernel;  /* direct kernel boot: kernel, initrd, command line */
    char *initrd;
    char *cmdline;
    char *loader; /* UEFI firmware code */
    char *nvram;  /* UEFI variable store of this guest */
    char *nvram_template;
    bool writable_disks; /* a disk the guest can write to (not read-only, not a CD-ROM) */
    bool nics;           /* it has a network interface */
    bool shared_file_memory; /* its RAM is one shared file (libvirt; no NUMA cells) */
    uint64_t memory;     /* its memory in bytes (libvirt's <memory>), 0 when not known */
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
    bool powered_off; /* SHUTOFF because the guest powered itself off (or rebooted with
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
    const char *dest_uri;    /* the target's management URI (libvirt URI, or ssh://host for libxl) */
    const char *data_uri;    /* where the guest's memory goes, NULL for the hypervisor default */
    uint64_t bandwidth_mib;  /* MiB/s, 0 = unlimited */
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

struct hv_conn;

struct hv_ops {
    const char *name;
    /* Pure: parse a guest configuration text. */
    int (*config_parse)(const char *text, struct hv_guest_config *ret, struct vmha_err *err);

    /* Opens a connection; every call on it must give up by the deadline. A hypervisor that
     * does not accept the connection within a sixth of the time left (5 s at least) is
     * reported as hung (-ETIMEDOUT) rather than waited for. */
    int (*open)(const char *uri, const struct vmha_deadline *dl, struct hv_conn **ret,
                struct vmha_err *err);
    void (*close)(struct hv_conn *c);
    int (*capabilities)(struct hv_conn *c, struct hv_caps *ret, struct vmha_err *err);

    /* Guest lookup by name or UUID: -ENOENT when this host does not know it. */
    int (*lookup)(struct hv_conn *c, const char *name_or_uuid, struct hv_guest_info *ret,
                  struct vmha_err *err);
    /* The configuration the guest runs with here (machine type expanded), or its
     * definition when it does not run. */
    int (*current_config)(struct hv_conn *c, const char *name, struct hv_guest_config *ret,
                          struct vmha_err *err);
    /* The guest's running job (a migration), -ENOENT when there is none. */
    int (*job_progress)(struct hv_conn *c, const char *name, struct hv_progress *ret,
                        struct vmha_err *err);
    int (*define)(struct hv_conn *c, const char *config_text, struct vmha_err *err);
    /* Pure: the one-off configuration of an install boot: config_text with o laid over it,
     * the UUID set to uuid (the defined guest's) and a reboot ending the guest, so an
     * installer that reboots at the end finishes the install like one that powers off. */
    int (*oneoff_config)(const char *config_text, const struct hv_boot_override *o,
                         const char *uuid, char **ret, struct vmha_err *err);
    /* Removes the persistent definition, keeping the NVRAM file (boot/ owns it). */
    int (*undefine)(struct hv_conn *c, const char *name, struct vmha_err *err);
    /* Starts the defined guest; with oneoff_config, boots that once while the persistent
     * definition stays as it is (an install boot). */
    int (*start)(struct hv_conn *c, const char *name, const char *oneoff_config,
                 struct vmha_err *err);
    int (*resume)(struct hv_conn *c, const char *name, struct vmha_err *err);
    /* Asks the guest to power off; returns at once. mode: NULL, "acpi", "agent", ... */
    int (*shutdown)(struct hv_conn *c, const char *name, const char *mode, struct vmha_err *err);
    int (*destroy)(struct hv_conn *c, const char *name, struct vmha_err *err);
    /* Live migration to another host; blocks until done, failed or cancelled. On failure
     * the guest keeps running here. */
    int (*migrate)(struct hv_conn *c, const char *name, const struct hv_migrate_params *p,
                   struct vmha_err *err);
    /* Where the running or defined guest keeps its NVRAM on this host. */
    int (*nvram_path)(struct hv_conn *c, const char *name, char **ret, struct vmha_err *err);

    /* Checkpoint replication (remus/). An epoch: ckpt_take streams a consistent checkpoint
     * and leaves the guest paused; once the backup holds it, ckpt_release lets out the
     * network output the guest produced before it, and resume continues the guest. */
    /* Holds the guest's network output from now on (installing the buffer once). */
    int (*ckpt_hold)(struct hv_conn *c, const char *name, struct vmha_err *err);
    /* Sends everything held so far; with stop, removes the buffer (output flows freely). */
    int (*ckpt_release)(struct hv_conn *c, const char *name, bool stop, struct vmha_err *err);
    /* Streams the guest's device state into fd, without the memory ckpt_memory shares
     * (remus/image.c merges the two into the form ckpt_restore reads), and returns with
     * the guest paused at the checkpoint. On failure the guest runs. */
    int (*ckpt_take)(struct hv_conn *c, const char *name, int fd, const struct vmha_deadline *dl,
                     struct hv_ckpt_stats *ret, struct vmha_err *err);
    /* A read-only descriptor of the running guest's RAM (a shared file), to map, and the
     * process that runs the guest (the memory is the guest's while it lives); called when
     * replication starts (it also undoes what a checkpoint cut short left set). */
    int (*ckpt_memory)(struct hv_conn *c, const char *name, int *fd, int *pid,
                       struct vmha_err *err);
    /* Creates the guest on this host, paused, from a checkpoint file, with config_text (the
     * guest's own configuration: whatever configuration the file carries is never used; it
     * must name the same guest). */
    int (*ckpt_restore)(struct hv_conn *c, const char *path, const char *config_text,
                        struct vmha_err *err);
    /* Xen's Remus leaves the backup's last complete checkpoint as a paused domain (the
     * replica): promote runs it as the guest (-ENOENT when there is none), discard removes
     * it (0 when there is none). */
    int (*replica_promote)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*replica_discard)(struct hv_conn *c, const char *name, struct vmha_err *err);
};

extern const struct hv_ops hv_libvirt_ops;
/* Only in builds with the libxl backend (VMHA_HAVE_LIBXL). */
extern const struct hv_ops hv_libxl_ops;
/* The target side of a libxl live migration: speaks the migration protocol on in/out (ssh's
 * stdin and stdout) and leaves the guest running here, or nothing at all. */
int hv_libxl_receive(int in, int out, const struct vmha_deadline *dl, struct vmha_err *err);
/* Xen's Remus on a connected socket fd. The primary's side returns only when replication
 * ends, with the guest suspended (resume brings it back). The backup's side returns when the
 * stream ends, leaving the last complete checkpoint as the paused domain NAME--replica
 * (its name in ret_name); the ops' replica_promote runs that replica as NAME. The replica is
 * made with config_text, the guest's own xl.cfg, never with the configuration the stream
 * carries, which must be of the same guest (name; UUID when the config names one). */
int hv_libxl_remus_send(struct hv_conn *c, const char *name, int fd, uint64_t interval_ms,
                        const struct vmha_deadline *dl, struct vmha_err *err);
int hv_libxl_remus_receive(struct hv_conn *c, int fd, const char *config_text,
                           const struct vmha_deadline *dl, char *ret_name, size_t size,
                           struct vmha_err *err);
/* Whether the guest is suspended right now (Remus suspends it for each checkpoint; the first
 * suspension ends the initial live copy): 1, 0, or -errno. *domid caches its domain id
 * between calls (start with UINT32_MAX). */
int hv_libxl_remus_suspended(struct hv_conn *c, const char *name, uint32_t *domid);

/* The backend that serves a hypervisor URI: "libxl" (or "libxl:...") for Xen through
 * libxenlight, anything else is a libvirt URI. -EOPNOTSUPP when vmha was built without it. */
int hv_backend_for_uri(const char *uri, const struct hv_ops **ret, struct vmha_err *err);

/* Calls a slot, or says clearly that this backend does not implement it. */
#define HV_CALL(ops, slot, err, ...)                                                               \
    ((ops)->slot ? (ops)->slot(__VA_ARGS__, err)                                                   \
                 : vmha_err_set(err, -EOPNOTSUPP, "the %s backend does not support " #slot,       \
                                (ops)->name))
