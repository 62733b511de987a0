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
    struct mig_level floor;  /* family "" when the guest has never run */
    const char *family;      /* the guest's hypervisor family, "" or NULL = any */
    const char *machine;     /* machine type it runs with (floor), NULL or "" = none known */
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
