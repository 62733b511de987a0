/* The only door to Pacemaker: logging, the cluster's view of its nodes and their
 * attributes (read from the CIB through libcib), and node attribute updates. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "vmha/common.h"

/* Logs through Pacemaker's logging when the cluster runs us (so lines land in the
 * cluster's log with everything else), to stderr when run by hand. */
void cluster_log_init(const char *entity, bool via_pacemaker);
void cluster_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cluster_attr {
    char *name, *value;
};

struct cluster_node {
    char *name;
    bool online;
    size_t n_perm, n_trans;
    struct cluster_attr *perm;  /* permanent: the CIB's nodes section */
    struct cluster_attr *trans; /* transient: status, as attrd writes them */
};

/* A primitive resource of the configuration, wherever it sits (group, clone, bundle). */
struct cluster_rsc {
    char *id;
    char *agent; /* "class:provider:type", e.g. "ocf:vmha:guest" */
    size_t n_params;
    struct cluster_attr *params;
};

struct cluster_view {
    bool quorate; /* this node's partition has quorum (as its CIB says) */
    size_t n;
    struct cluster_node *nodes;
    size_t n_rsc;
    struct cluster_rsc *rsc;
};

/* Reads nodes, their attributes and the primitives from the local CIB, giving up at dl. */
int cluster_read(const struct vmha_deadline *dl, struct cluster_view *ret, struct vmha_err *err);
void cluster_view_clear(struct cluster_view *v);
const struct cluster_node *cluster_node_find(const struct cluster_view *v, const char *name);
/* A node's attribute, transient or permanent; NULL when unset. */
const char *cluster_node_attr(const struct cluster_node *n, const char *name, bool transient);

/* A primitive's instance attribute (parameter), NULL when unset. */
const char *cluster_rsc_param(const struct cluster_rsc *r, const char *name);

/* Where the cluster runs each primitive, as `crm_mon --output-as=xml` publishes it. */
struct cluster_rsc_state {
    char *id;      /* a clone's instances as "web1" (anonymous) or "web1:0" (unique) */
    char *agent;   /* "ocf:vmha:guest" */
    char **nodes;  /* NULL-terminated: where it is active */
    char role[16]; /* Started, Stopped, Promoted, Unpromoted, ... */
    bool failed, managed;
};

int cluster_resource_states(const struct vmha_deadline *dl, struct cluster_rsc_state **ret,
                            size_t *n, struct vmha_err *err);
void cluster_resource_states_free(struct cluster_rsc_state *s, size_t n);
/* The same from crm_mon's XML in xml (len bytes): -EPROTO when it is not its answer. */
int cluster_resource_states_parse(const char *xml, size_t len, struct cluster_rsc_state **ret,
                                  size_t *n, struct vmha_err *err);

/* Sets (value) or deletes (NULL) a transient attribute of node. */
int cluster_attr_update(const char *node, const char *name, const char *value,
                        const struct vmha_deadline *dl, struct vmha_err *err);

/* Sets (value) or deletes (NULL) a permanent attribute of node (it survives reboots). */
int cluster_attr_set_permanent(const char *node, const char *name, const char *value,
                               const struct vmha_deadline *dl, struct vmha_err *err);

/* The name this node has in the cluster: what Pacemaker told the agent, else uname. */
const char *cluster_local_node(const char *from_pacemaker);
