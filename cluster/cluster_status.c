/* Where resources run, as Pacemaker's own status tool publishes it: `crm_mon --output-as=xml`,
 * whose schema is stable across Pacemaker 2.1 and 3.0 (3.0 made the scheduler's structures
 * private). crm_mon reads the live CIB, or the file CIB_file names, as vmha does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cluster_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

/* crm_mon's answer for a large cluster is a few hundred KiB. */
#define CRM_MON_MAX (16u << 20)

void cluster_resource_states_free(struct cluster_rsc_state *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].id);
        free(s[i].agent);
        for (char **p = s[i].nodes; p && *p; p++)
            free(*p);
        free(s[i].nodes);
    }
    free(s);
}

struct collect {
    struct cluster_rsc_state *list;
    size_t n;
    int err;
};

static char *attr(xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    char *s = strdup(v ? (const char *)v : "");
    xmlFree(v);
    return s;
}

static bool attr_true(xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    bool t = v && strcmp((const char *)v, "true") == 0;
    xmlFree(v);
    return t;
}

static bool named(xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* One <resource> (a primitive, or one instance of a clone): its id, agent, role, flags and
 * the <node name=...> it is active on. */
static void add_resource(xmlNode *r, struct collect *c)
{
    struct cluster_rsc_state *m = realloc(c->list, (c->n + 1) * sizeof(*m));
    if (!m) {
        c->err = -ENOMEM;
        return;
    }
    c->list = m;
    struct cluster_rsc_state *s = &m[c->n++];
    memset(s, 0, sizeof(*s));
    s->id = attr(r, "id");
    s->agent = attr(r, "resource_agent");
    char *role = attr(r, "role");
    snprintf(s->role, sizeof(s->role), "%s", role ? role : "");
    free(role);
    s->failed = attr_true(r, "failed");
    s->managed = attr_true(r, "managed");
    size_t k = 0;
    for (xmlNode *n = r->children; n; n = n->next)
        k += named(n, "node");
    s->nodes = calloc(k + 1, sizeof(*s->nodes));
    size_t i = 0;
    for (xmlNode *n = r->children; s->nodes && n; n = n->next)
        if (named(n, "node") && !(s->nodes[i++] = attr(n, "name")))
            c->err = -ENOMEM;
    if (!s->id || !s->agent || !s->nodes)
        c->err = -ENOMEM;
}

/* Resources, and those inside groups, clones and bundles' replicas, at any depth. */
static void walk(xmlNode *parent, struct collect *c)
{
    for (xmlNode *n = parent->children; n && !c->err; n = n->next) {
        if (named(n, "resource"))
            add_resource(n, c);
        else if (n->type == XML_ELEMENT_NODE)
            walk(n, c);
    }
}

/* Parses crm_mon's XML (a local program's output, still bounded and parsed without network
 * or entity expansion). */
static int parse(const char *text, size_t len, struct collect *c, struct vmha_err *err)
{
    xmlDoc *doc = xmlReadMemory(text, (int)len, "crm_mon.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return vmha_err_set(err, -EPROTO, "crm_mon's answer is not XML");
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *res = NULL;
    for (xmlNode *n = root ? root->children : NULL; n && !res; n = n->next)
        if (named(n, "resources"))
            res = n;
    if (!root || !named(root, "pacemaker-result") || !res) {
        xmlFreeDoc(doc);
        return vmha_err_set(err, -EPROTO, "crm_mon's answer has no <resources>");
    }
    walk(res, c);
    xmlFreeDoc(doc);
    return c->err ? vmha_err_set(err, c->err, "cannot read the cluster's state") : 0;
}

int cluster_resource_states_parse(const char *xml, size_t len, struct cluster_rsc_state **ret,
                                  size_t *n, struct vmha_err *err)
{
    struct collect c = {0};
    int r = parse(xml, len, &c, err);
    if (r < 0) {
        cluster_resource_states_free(c.list, c.n);
        return r;
    }
    *ret = c.list;
    *n = c.n;
    return 0;
}

int cluster_resource_states(const struct vmha_deadline *dl, struct cluster_rsc_state **ret,
                            size_t *n, struct vmha_err *err)
{
    *ret = NULL;
    *n = 0;
    char *argv[] = {"crm_mon", "--output-as=xml", "--inactive", NULL};
    /* Seen with libpe_status (which crm_mon uses): an assertion on a CIB caught mid-transition,
     * operations in flight. A moment later the same question has an answer. */
    for (int attempt = 1;; attempt++) {
        char *text = NULL;
        int r = vmha_run_output(argv, dl, &text, CRM_MON_MAX, err);
        if (r == 0) {
            r = cluster_resource_states_parse(text, strlen(text), ret, n, err);
            free(text);
            return r;
        }
        if (r == -ETIMEDOUT || attempt == 3 || !vmha_deadline_sleep(dl, 300))
            return r;
    }
}
