/* The cluster's nodes and their attributes (see include/vmha/cluster.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <crm/cib.h>
#include <crm/common/xml.h>
#if __has_include(<crm/common/xml_element.h>)
#include <crm/common/xml_element.h> /* crm_element_value, since Pacemaker 3.0 */
#endif
#include <crm/crm.h>
#include <libxml/tree.h>

#include "cluster_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

static void attrs_clear(struct cluster_attr *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
    free(a);
}

void cluster_view_clear(struct cluster_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->nodes[i].name);
        attrs_clear(v->nodes[i].perm, v->nodes[i].n_perm);
        attrs_clear(v->nodes[i].trans, v->nodes[i].n_trans);
    }
    free(v->nodes);
    for (size_t i = 0; i < v->n_rsc; i++) {
        free(v->rsc[i].id);
        free(v->rsc[i].agent);
        attrs_clear(v->rsc[i].params, v->rsc[i].n_params);
    }
    free(v->rsc);
    memset(v, 0, sizeof(*v));
}

static xmlNode *child(xmlNode *x, const char *name)
{
    for (xmlNode *c = x ? x->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

static const char *attr(xmlNode *x, const char *name)
{
    return crm_element_value(x, name);
}

/* Appends every nvpair of every instance_attributes under x. */
static int collect(xmlNode *x, struct cluster_attr **a, size_t *n)
{
    for (xmlNode *ia = x ? x->children : NULL; ia; ia = ia->next) {
        if (ia->type != XML_ELEMENT_NODE || strcmp((const char *)ia->name, "instance_attributes"))
            continue;
        for (xmlNode *nv = ia->children; nv; nv = nv->next) {
            if (nv->type != XML_ELEMENT_NODE || strcmp((const char *)nv->name, "nvpair"))
                continue;
            const char *k = attr(nv, "name"), *v = attr(nv, "value");
            if (!k || !v)
                continue;
            struct cluster_attr *m = realloc(*a, (*n + 1) * sizeof(**a));
            if (!m)
                return -ENOMEM;
            *a = m;
            m[*n].name = strdup(k);
            m[*n].value = strdup(v);
            (*n)++;
            if (!m[*n - 1].name || !m[*n - 1].value)
                return -ENOMEM;
        }
    }
    return 0;
}

static struct cluster_node *node_for(struct cluster_view *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->nodes[i].name, name) == 0)
            return &v->nodes[i];
    struct cluster_node *m = realloc(v->nodes, (v->n + 1) * sizeof(*m));
    if (!m)
        return NULL;
    v->nodes = m;
    memset(&m[v->n], 0, sizeof(m[v->n]));
    if (!(m[v->n].name = strdup(name)))
        return NULL;
    return &m[v->n++];
}

/* Every primitive under x, depth first. */
static int collect_primitives(xmlNode *x, struct cluster_view *v)
{
    for (xmlNode *c = x ? x->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "primitive") != 0) {
            if (collect_primitives(c, v) < 0)
                return -ENOMEM;
            continue;
        }
        const char *id = attr(c, "id"), *cls = attr(c, "class"), *type = attr(c, "type");
        const char *prov = attr(c, "provider");
        if (!id || !cls || !type)
            continue;
        struct cluster_rsc *m = realloc(v->rsc, (v->n_rsc + 1) * sizeof(*m));
        if (!m)
            return -ENOMEM;
        v->rsc = m;
        struct cluster_rsc *r = &m[v->n_rsc++];
        memset(r, 0, sizeof(*r));
        r->id = strdup(id);
        if (asprintf(&r->agent, "%s:%s%s%s", cls, prov ? prov : "", prov ? ":" : "", type) < 0)
            r->agent = NULL;
        if (!r->id || !r->agent || collect(c, &r->params, &r->n_params) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* A node_state's crmd or in_ccm: up unless missing or one of the words (or the 0) for down. */
static bool state_up(const char *v)
{
    static const char *const down[] = {"offline", "false", "no", "off", "0"};
    if (!v || !v[0])
        return false;
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        if (strcasecmp(v, down[i]) == 0)
            return false;
    return true;
}

static int parse_cib(xmlNode *cib, struct cluster_view *v)
{
    const char *q = attr(cib, "have-quorum");
    v->quorate = q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0);
    if (collect_primitives(child(child(cib, "configuration"), "resources"), v) < 0)
        return -ENOMEM;
    for (xmlNode *n = child(child(child(cib, "configuration"), "nodes"), "node"); n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "node") ||
            !attr(n, "uname"))
            continue;
        struct cluster_node *cn = node_for(v, attr(n, "uname"));
        if (!cn || collect(n, &cn->perm, &cn->n_perm) < 0)
            return -ENOMEM;
    }
    for (xmlNode *s = child(child(cib, "status"), "node_state"); s; s = s->next) {
        if (s->type != XML_ELEMENT_NODE || strcmp((const char *)s->name, "node_state") ||
            !attr(s, "uname"))
            continue;
        struct cluster_node *cn = node_for(v, attr(s, "uname"));
        if (!cn || collect(child(s, "transient_attributes"), &cn->trans, &cn->n_trans) < 0)
            return -ENOMEM;
        /* Pacemaker before 2.1.7 writes "online"/"offline" and "true"/"false"; 2.1.7 and
         * later (3.0) write the time it joined for the online case and "0" for offline. */
        cn->online = state_up(attr(s, "crmd")) && state_up(attr(s, "in_ccm"));
    }
    return 0;
}

VMHA_DEFINE_CLEANUP(xmlNode *, free_xml)

int cluster_query_cib(const struct vmha_deadline *dl, xmlNode **ret, struct vmha_err *err)
{
    *ret = NULL;
    uint64_t left = vmha_deadline_left_ms(dl);
    if (left < 1000)
        return vmha_err_set(err, -ETIMEDOUT, "no time left to read the CIB");
    /* A file-backed CIB (CIB_file, for tools and tests) is checked against the schema with
     * libxml, which must have been set up through Pacemaker first, or every CIB is refused
     * as not conforming. Idempotent. */
    crm_xml_init();
    cib_t *cib = cib_new();
    if (!cib)
        return vmha_err_set(err, -ENOMEM, "cannot create a CIB connection");
    int rc = cib->cmds->signon(cib, "vmha", cib_query);
    if (rc != pcmk_ok) {
        cib_delete(cib);
        return vmha_err_set(err, -ENOTCONN, "cannot connect to the CIB: %s", pcmk_strerror(rc));
    }
    cib->call_timeout = (int)(left / 1000);
    rc = cib->cmds->query(cib, NULL, ret, cib_scope_local | cib_sync_call);
    cib->cmds->signoff(cib);
    cib_delete(cib);
    if (rc != pcmk_ok || !*ret) {
        if (*ret)
            free_xml(*ret);
        *ret = NULL;
        return vmha_err_set(err, -EIO, "cannot read the CIB: %s", pcmk_strerror(rc));
    }
    return 0;
}

int cluster_read(const struct vmha_deadline *dl, struct cluster_view *ret, struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_(free_xmlp) xmlNode *xml = NULL;
    int r = cluster_query_cib(dl, &xml, err);
    if (r < 0)
        return r;
    if (parse_cib(xml, ret) < 0) {
        cluster_view_clear(ret);
        return vmha_err_set(err, -ENOMEM, "out of memory reading the CIB");
    }
    return 0;
}

const struct cluster_node *cluster_node_find(const struct cluster_view *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->nodes[i].name, name) == 0)
            return &v->nodes[i];
    return NULL;
}

const char *cluster_node_attr(const struct cluster_node *n, const char *name, bool transient)
{
    const struct cluster_attr *a = transient ? n->trans : n->perm;
    size_t count = transient ? n->n_trans : n->n_perm;
    for (size_t i = 0; i < count; i++)
        if (strcmp(a[i].name, name) == 0)
            return a[i].value;
    return NULL;
}

const char *cluster_rsc_param(const struct cluster_rsc *r, const char *name)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

int cluster_attr_update(const char *node, const char *name, const char *value,
                        const struct vmha_deadline *dl, struct vmha_err *err)
{
    /* Pacemaker 2.1 has no public C API for attrd (only crm/common/ipc_attrd_internal.h):
     * attrd_updater is the supported door, as ocf:pacemaker:ping uses it. */
    char *const set[] = {"attrd_updater", "-N", (char *)node,  "-n",
                         (char *)name,    "-U", (char *)value, NULL};
    char *const del[] = {"attrd_updater", "-N", (char *)node, "-n", (char *)name, "-D", NULL};
    return vmha_run(value ? set : del, dl, err);
}

int cluster_attr_set_permanent(const char *node, const char *name, const char *value,
                               const struct vmha_deadline *dl, struct vmha_err *err)
{
    /* crm_attribute writes the CIB's nodes section, which outlives the node's reboots (and
     * may be written for a node that is down). */
    char *const set[] = {"crm_attribute", "-N", (char *)node,  "-n", (char *)name, "-l",
                         "forever",       "-v", (char *)value, NULL};
    char *const del[] = {"crm_attribute", "-N", (char *)node, "-n", (char *)name, "-l",
                         "forever",       "-D", NULL};
    return vmha_run(value ? set : del, dl, err);
}

const char *cluster_local_node(const char *from_pacemaker)
{
    static struct utsname u;
    if (from_pacemaker && from_pacemaker[0])
        return from_pacemaker;
    if (uname(&u) < 0)
        return "";
    return u.nodename;
}
