/* The glue between the policy, the state store and the cluster (see include/vmha/migrate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/migrate.h"
#include "vmha/state.h"

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int mig_record_read(const char *state_dir, const char *guest, struct mig_record *ret,
                    struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_free_ char *dir = NULL;
    int r = store_guest_dir(state_dir, guest, &dir, err);
    if (r < 0)
        return r;
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    if ((r = store_read(dir, STATE_FLOOR, &kv, err)) < 0)
        return r;
    const char *level = store_kv_get(&kv, "level");
    struct vmha_err e = {0};
    if (level && level[0] && mig_level_parse(level, NULL, &ret->floor, &e) < 0)
        return vmha_err_set(err, -EINVAL, "%s/%s: %s", dir, STATE_FLOOR, e.msg);
    copy(ret->family, sizeof(ret->family), store_kv_get(&kv, "family"));
    copy(ret->machine, sizeof(ret->machine), store_kv_get(&kv, "machine"));
    copy(ret->config_machine, sizeof(ret->config_machine), store_kv_get(&kv, "config_machine"));
    copy(ret->host, sizeof(ret->host), store_kv_get(&kv, "host"));
    uint64_t w = 1;
    const char *window = store_kv_get(&kv, "window");
    if (window && vmha_parse_uint(window, 1000, &w) < 0)
        return vmha_err_set(err, -EINVAL, "%s/%s: window=%s is not a number", dir, STATE_FLOOR,
                            window);
    ret->window = (unsigned)w;
    return 0;
}

static int record_write(const char *dir, const struct mig_record *m, bool exclusive,
                        struct vmha_err *err)
{
    char level[48], window[16];
    mig_level_format(&m->floor, level, sizeof(level));
    snprintf(window, sizeof(window), "%u", m->window);
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    if (store_kv_set(&kv, "level", level) < 0 || store_kv_set(&kv, "family", m->family) < 0 ||
        store_kv_set(&kv, "machine", m->machine) < 0 ||
        store_kv_set(&kv, "config_machine", m->config_machine) < 0 ||
        store_kv_set(&kv, "window", window) < 0 || store_kv_set(&kv, "host", m->host) < 0)
        return vmha_err_set(err, -EINVAL, "a value of the migration record holds a newline");
    return store_write(dir, STATE_FLOOR, &kv, exclusive, err);
}

/* Read-modify-write under the guest directory's lock. */
static int record_update(const char *state_dir, const char *guest, const struct vmha_deadline *dl,
                         void (*change)(struct mig_record *m, const void *arg), const void *arg,
                         struct mig_record *ret, struct vmha_err *err)
{
    _cleanup_free_ char *dir = NULL;
    int r = store_guest_dir(state_dir, guest, &dir, err);
    if (r < 0)
        return r;
    int lock = -1;
    if ((r = store_lock(dir, dl, &lock, err)) < 0)
        return r;
    struct mig_record m;
    r = mig_record_read(state_dir, guest, &m, err);
    if (r == -ENOENT) {
        memset(&m, 0, sizeof(m));
        m.window = 1;
        r = 0;
    }
    if (r == 0) {
        struct mig_record before = m;
        change(&m, arg);
        if (memcmp(&before, &m, sizeof(m)) != 0)
            r = record_write(dir, &m, false, err);
    }
    store_unlock(lock);
    if (r == 0 && ret)
        *ret = m;
    return r;
}

static void set_needs(struct mig_record *m, const void *arg)
{
    const struct mig_record *n = arg;
    copy(m->family, sizeof(m->family), n->family);
    copy(m->config_machine, sizeof(m->config_machine), n->config_machine);
    m->window = n->window;
}

int mig_record_register(const char *state_dir, const char *guest, const struct mig_record *needs,
                        const struct vmha_deadline *dl, struct vmha_err *err)
{
    return record_update(state_dir, guest, dl, set_needs, needs, NULL, err);
}

struct raise_arg {
    const struct mig_level *level;
    const char *machine, *host;
};

static void raise_floor(struct mig_record *m, const void *arg)
{
    const struct raise_arg *a = arg;
    /* Never lower: a guest moved within a stable branch keeps the higher micro release. */
    if (!m->floor.family[0] || strcmp(m->floor.family, a->level->family) != 0 ||
        mig_level_cmp(a->level, &m->floor) > 0)
        m->floor = *a->level;
    if (a->machine && a->machine[0])
        copy(m->machine, sizeof(m->machine), a->machine);
    copy(m->host, sizeof(m->host), a->host);
}

int mig_record_raise(const char *state_dir, const char *guest, const struct mig_level *level,
                     const char *machine, const char *host, const struct vmha_deadline *dl,
                     struct mig_record *ret, struct vmha_err *err)
{
    struct raise_arg a = {level, machine, host};
    return record_update(state_dir, guest, dl, raise_floor, &a, ret, err);
}

void mig_record_need(const struct mig_record *r, struct mig_need *ret)
{
    *ret = (struct mig_need){.floor = r->floor,
                             .family = r->family,
                             .machine = r->machine,
                             .config_machine = r->config_machine,
                             .window = r->window};
}

void mig_host_of(const struct cluster_node *n, struct mig_host *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->name = n->name;
    const char *level = cluster_node_attr(n, MIG_ATTR_LEVEL, true);
    if (level && mig_level_parse(level, NULL, &ret->level, &(struct vmha_err){0}) < 0)
        memset(&ret->level, 0, sizeof(ret->level)); /* garbage says nothing */
    ret->machines = cluster_node_attr(n, MIG_ATTR_MACHINES, true);
}

void mig_path_attr(const char *guest, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", MIG_ATTR_PATH_PREFIX, guest);
}

void mig_verdict(const struct mig_need *need, const struct mig_host *host, char *buf, size_t size)
{
    char why[400];
    if (mig_allowed(need, host, why, sizeof(why)))
        snprintf(buf, size, "%s", MIG_VERDICT_OK);
    else
        snprintf(buf, size, "no: %s", why);
}

int mig_publish(const struct cluster_view *v, const char *node, const char *guest,
                const struct mig_need *need, const struct vmha_deadline *dl, struct vmha_err *err)
{
    char name[300];
    mig_path_attr(guest, name, sizeof(name));
    int changed = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct cluster_node *n = &v->nodes[i];
        if (node && strcmp(n->name, node) != 0)
            continue;
        struct mig_host h;
        mig_host_of(n, &h);
        char verdict[420];
        mig_verdict(need, &h, verdict, sizeof(verdict));
        const char *now = cluster_node_attr(n, name, true);
        if (now && strcmp(now, verdict) == 0)
            continue;
        int r = cluster_attr_update(n->name, name, verdict, dl, err);
        if (r < 0)
            return r;
        changed++;
    }
    return changed;
}
