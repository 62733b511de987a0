/* Migration paths: which hosts a guest may move to, and why not.
 *
 * A host's level is its hypervisor family and release ("qemu 7.2.0", "xen 4.17"). A guest's
 * floor is the highest level it has run on and the machine type it runs with; it only
 * rises. A guest at floor N may run on a host at level N..N+M, M being the guest's
 * migration_window counted in major releases for QEMU and minor releases for Xen. Within a
 * stable branch (same major.minor) it moves both ways; it never moves below its floor's
 * branch, and never to a host that lacks its machine type.
 *
 * Everything here is pure: the agent and the tool bring the levels and the floor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vmha/common.h"
#include "vmha/hv.h"

struct mig_level {
    char family[16]; /* "qemu", "xen"; "" = unknown */
    unsigned major, minor, micro;
};

/* "qemu 7.2.0", "xen 4.17", "7.2" (family_default fills in the family; NULL = required).
 * -EINVAL with the reason for anything else. */
int mig_level_parse(const char *text, const char *family_default, struct mig_level *ret,
                    struct vmha_err *err);
/* "qemu 7.2.0"; "" for an unknown level. */
void mig_level_format(const struct mig_level *l, char *buf, size_t size);
/* The level a hypervisor reports about itself. */
int mig_level_from_caps(const struct hv_caps *caps, struct mig_level *ret, struct vmha_err *err);
/* -1, 0, 1 by (major, minor, micro); the families must match. */
int mig_level_cmp(const struct mig_level *a, const struct mig_level *b);

/* The default migration_window of a family: 1 (QEMU: one major release, Xen: one minor). */
unsigned mig_default_window(const char *family);
/* What the window counts in that family: "major" or "minor". */
const char *mig_window_unit(const char *family);

/* What a guest needs of a host. */
struct mig_need {
    struct mig_level floor;     /* family "" when the guest has never run */
    const char *family;         /* the guest's hypervisor family, "" or NULL = any */
    const char *machine;        /* machine type it runs with (floor), NULL or "" = none known */
    const char *config_machine; /* machine type its config asks for, NULL or "" = default */
    unsigned window;
};

/* What a host offers. */
struct mig_host {
    const char *name;
    struct mig_level level; /* family "" when the host never said */
    const char *machines;   /* space-separated machine types, NULL = unknown */
};

/* Whether the guest may run on the host: true, or false with the reason in why (one
 * sentence naming both levels and the rule). */
bool mig_allowed(const struct mig_need *need, const struct mig_host *host, char *why,
                 size_t why_size);

/* Whether a space-separated list holds a word. */
bool mig_list_has(const char *list, const char *word);

/* --- The glue (migrate/paths.c): node levels come from the cluster's node attributes, a
 * guest's floor from the state store; verdicts go back as node attributes that location
 * rules read. */

/* What each node advertises (transient attributes, written by ocf:vmha:node). */
#define MIG_ATTR_LEVEL "vmha-level"
#define MIG_ATTR_MACHINES "vmha-machines"
/* For information: what the node really runs, e.g. "qemu 7.2.0, libvirt 9.0.0". */
#define MIG_ATTR_DETECTED "vmha-detected"
/* What an operator pins (permanent attributes: crm node attribute NODE set ...). */
#define MIG_ATTR_PIN_LEVEL "vmha-pin-level"
#define MIG_ATTR_PIN_MACHINES "vmha-pin-machines"
/* Per guest and node: "ok", or "no: <reason>". Location rules read this. */
#define MIG_ATTR_PATH_PREFIX "vmha-path-"
#define MIG_VERDICT_OK "ok"
/* Per guest and node: whether this node's copies of the guest's directly booted kernel and
 * initrd match the recorded digests: "ok", or "no: <reason>". */
#define MIG_ATTR_BOOT_PREFIX "vmha-boot-"

struct cluster_node;
struct cluster_view;

/* A guest's record in the store (state_dir/<guest>/floor). */
struct mig_record {
    struct mig_level floor; /* family "" when it has never run */
    char family[16];        /* its hypervisor family */
    char machine[64];       /* machine type it ran with last */
    char config_machine[64];
    unsigned window;
    char host[64]; /* where it last raised its floor */
};

int mig_record_read(const char *state_dir, const char *guest, struct mig_record *ret,
                    struct vmha_err *err);
/* Creates the record if absent, or updates what the guest needs (family, configured machine
 * type, window); the floor stays as it is. */
int mig_record_register(const char *state_dir, const char *guest, const struct mig_record *needs,
                        const struct vmha_deadline *dl, struct vmha_err *err);
/* Raises the floor to level (never lowers it) and records the machine type and host. */
int mig_record_raise(const char *state_dir, const char *guest, const struct mig_level *level,
                     const char *machine, const char *host, const struct vmha_deadline *dl,
                     struct mig_record *ret, struct vmha_err *err);
void mig_record_need(const struct mig_record *r, struct mig_need *ret);

/* The level and machine types a node advertises; level.family "" when it says nothing. */
void mig_host_of(const struct cluster_node *n, struct mig_host *ret);
/* "vmha-path-<guest>" */
void mig_path_attr(const char *guest, char *buf, size_t size);
/* "ok" or "no: <reason>" for the guest on host. */
void mig_verdict(const struct mig_need *need, const struct mig_host *host, char *buf, size_t size);
/* Writes the guest's verdict on every node of the view where it changed (or only on node,
 * when node is not NULL). Returns how many changed, or an error. */
int mig_publish(const struct cluster_view *v, const char *node, const char *guest,
                const struct mig_need *need, const struct vmha_deadline *dl, struct vmha_err *err);
