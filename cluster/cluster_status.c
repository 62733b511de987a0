/* Where resources run, computed from the CIB the way crm_mon does (libpe_status). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crm/cib.h>
#include <crm/common/xml.h>
#include <crm/crm.h>
#include <crm/pengine/status.h>

#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "cluster_private.h"

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

static void add_primitive(pe_resource_t *rsc, struct collect *c)
{
    struct cluster_rsc_state *m = realloc(c->list, (c->n + 1) * sizeof(*m));
    if (!m) {
        c->err = -ENOMEM;
        return;
    }
    c->list = m;
    struct cluster_rsc_state *s = &m[c->n++];
    memset(s, 0, sizeof(*s));
    const char *cls = crm_element_value(rsc->xml, "class");
    const char *prov = crm_element_value(rsc->xml, "provider");
    const char *type = crm_element_value(rsc->xml, "type");
    s->id = strdup(rsc->id);
    if (asprintf(&s->agent, "%s:%s%s%s", cls ? cls : "", prov ? prov : "", prov ? ":" : "",
                 type ? type : "") < 0)
        s->agent = NULL;
    snprintf(s->role, sizeof(s->role), "%s", role2text(rsc->role));
    s->failed = rsc->flags & pe_rsc_failed;
    s->managed = rsc->flags & pe_rsc_managed;
    size_t k = g_list_length(rsc->running_on), i = 0;
    s->nodes = calloc(k + 1, sizeof(*s->nodes));
    for (GList *l = rsc->running_on; s->nodes && l; l = l->next)
        s->nodes[i++] = strdup(((pe_node_t *)l->data)->details->uname);
    if (!s->id || !s->agent || !s->nodes)
        c->err = -ENOMEM;
}

static void walk(GList *resources, struct collect *c)
{
    for (GList *l = resources; l && !c->err; l = l->next) {
        pe_resource_t *rsc = l->data;
        if (rsc->children)
            walk(rsc->children, c);
        else
            add_primitive(rsc, c);
    }
}


/* One primitive per line: id, agent, role, failed, managed, then the nodes, tab-separated. */
static void emit(FILE *out, const struct collect *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cluster_rsc_state *s = &c->list[i];
        fprintf(out, "%s\t%s\t%s\t%d\t%d", s->id, s->agent, s->role, s->failed, s->managed);
        for (char **h = s->nodes; h && *h; h++)
            fprintf(out, "\t%s", *h);
        fputc('\n', out);
    }
}

static int parse_line(char *line, struct cluster_rsc_state *s)
{
    memset(s, 0, sizeof(*s));
    char *save = NULL, *f[5];
    for (int i = 0; i < 5; i++)
        if (!(f[i] = strtok_r(i ? NULL : line, "\t", &save)))
            return -EPROTO;
    size_t cap = 4, k = 0;
    s->nodes = calloc(cap + 1, sizeof(char *));
    s->id = strdup(f[0]);
    s->agent = strdup(f[1]);
    snprintf(s->role, sizeof(s->role), "%s", f[2]);
    s->failed = f[3][0] == '1';
    s->managed = f[4][0] == '1';
    for (char *h; s->nodes && (h = strtok_r(NULL, "\t", &save));) {
        if (k == cap) {
            char **m = realloc(s->nodes, (2 * cap + 1) * sizeof(char *));
            if (!m)
                return -ENOMEM;
            s->nodes = m;
            cap *= 2;
        }
        s->nodes[k++] = strdup(h);
        s->nodes[k] = NULL;
    }
    return s->id && s->agent && s->nodes ? 0 : -ENOMEM;
}

/* The computation itself, in a child process: libpe_status is the scheduler's library,
 * made for one computation per process, and asserts (abort) on states it does not expect.
 * A child that dies costs this one query, not the caller. */
static void compute(xmlNode *xml, int fd, int errfd)
{
    /* What the library says when it gives up (an assertion) goes to the parent. */
    dup2(errfd, STDERR_FILENO);
    char *argv[] = {"vmha", NULL};
    crm_log_init("vmha", LOG_ERR, FALSE, TRUE, 1, argv, TRUE);
    pe_working_set_t *ws = pe_new_working_set();
    if (!ws)
        _exit(1);
    ws->input = xml;
    cluster_status(ws);
    struct collect c = {0};
    walk(ws->resources, &c);
    FILE *out = fdopen(fd, "w");
    if (c.err || !out)
        _exit(1);
    emit(out, &c);
    _exit(fclose(out) == 0 ? 0 : 1);
}

static int states_once(const struct vmha_deadline *dl, struct cluster_rsc_state **ret, size_t *n,
                       struct vmha_err *err, bool *crashed)
{
    *crashed = false;
    *ret = NULL;
    *n = 0;
    xmlNode *xml = NULL;
    int rc = cluster_query_cib(dl, &xml, err);
    if (rc < 0)
        return rc;
    int pfd[2], efd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        free_xml(xml);
        return vmha_err_set(err, -errno, "pipe: %s", strerror(errno));
    }
    if (pipe2(efd, O_CLOEXEC | O_NONBLOCK) < 0) {
        close(pfd[0]);
        close(pfd[1]);
        free_xml(xml);
        return vmha_err_set(err, -errno, "pipe: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        close(efd[0]);
        compute(xml, pfd[1], efd[1]);
    }
    free_xml(xml);
    close(pfd[1]);
    close(efd[1]);
    if (pid < 0) {
        close(pfd[0]);
        close(efd[0]);
        return vmha_err_set(err, -errno, "fork: %s", strerror(errno));
    }
    /* Read everything the child says, by the deadline. */
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool timed_out = false;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0 || poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (left == 0 || errno != EINTR) {
                timed_out = left == 0;
                break;
            }
            continue;
        }
        if (cap - len < 4096) {
            char *m = realloc(text, cap = cap ? 2 * cap : 16384);
            if (!m)
                break;
            text = m;
        }
        ssize_t got = read(pfd[0], text + len, cap - len - 1);
        if (got <= 0 && !(got < 0 && errno == EINTR))
            break;
        if (got > 0)
            len += (size_t)got;
    }
    close(pfd[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char said[400] = "";
    ssize_t e = read(efd[0], said, sizeof(said) - 1);
    close(efd[0]);
    said[e > 0 ? e : 0] = '\0';
    said[strcspn(said, "\n")] = '\0';
    if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !text) {
        free(text);
        if (timed_out)
            return vmha_err_set(err, -ETIMEDOUT, "computing the cluster's state took too long");
        *crashed = WIFSIGNALED(status);
        return vmha_err_set(err, -EIO, "computing the cluster's state failed (%s %d)%s%s",
                            WIFSIGNALED(status) ? "signal" : "exit status",
                            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                            said[0] ? ": " : "", said);
    }
    text[len] = '\0';
    struct collect c = {0};
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && !c.err;
         line = strtok_r(NULL, "\n", &save)) {
        struct cluster_rsc_state *m = realloc(c.list, (c.n + 1) * sizeof(*m));
        if (!m) {
            c.err = -ENOMEM;
            break;
        }
        c.list = m;
        c.err = parse_line(line, &c.list[c.n++]);
    }
    free(text);
    if (c.err) {
        cluster_resource_states_free(c.list, c.n);
        return vmha_err_set(err, c.err, "cannot read the cluster's state");
    }
    *ret = c.list;
    *n = c.n;
    return 0;
}

int cluster_resource_states(const struct vmha_deadline *dl, struct cluster_rsc_state **ret,
                            size_t *n, struct vmha_err *err)
{
    /* Seen: libpe_status aborting on a CIB caught mid-transition (operations in flight).
     * A moment later the same question has an answer. */
    for (int attempt = 1;; attempt++) {
        bool crashed = false;
        int r = states_once(dl, ret, n, err, &crashed);
        if (r == 0 || !crashed || attempt == 3 || !vmha_deadline_sleep(dl, 300))
            return r;
    }
}
