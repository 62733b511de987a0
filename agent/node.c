/* ocf:vmha:node — run as a clone on every node, it publishes what this node's hypervisor
 * offers (its level and machine types) as node attributes, and for every guest in the state
 * store whether that guest may run here ("vmha-path-<guest>" = ok, or no: <reason>), which
 * the guests' location rules read. An operator pins the advertised level with the permanent
 * node attributes vmha-pin-level and vmha-pin-machines (a cluster compatibility level
 * during a rolling upgrade). Like ocf:pacemaker:ping, stopping it leaves the attributes
 * as they are: stopping a monitoring clone must not evacuate guests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/migrate.h"

struct node_params {
    const char *hypervisor, *state_dir, *instance, *on_node, *rundir;
    uint64_t timeout_ms;
    bool by_cluster;
};

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void meta_data(void)
{
    printf("%s",
           "<?xml version=\"1.0\"?>\n"
           "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"
           "<resource-agent name=\"node\" version=\"" VMHA_VERSION "\">\n"
           "<version>1.1</version>\n"
           "<longdesc lang=\"en\">\n"
           "Run as a clone on every node. Publishes the node's hypervisor level (vmha-level, "
           "e.g. 'qemu 7.2.0') and machine types (vmha-machines) as node attributes, and for "
           "every guest in state_dir whether it may run on this node under the migration "
           "policy (vmha-path-GUEST: 'ok' or 'no: reason'). Give each ocf:vmha:guest "
           "resource a location rule such as: location web1-paths web1 rule -inf: "
           "vmha-path-web1 ne ok. Pin a node's advertised level during a rolling upgrade "
           "with: crm node attribute NODE set vmha-pin-level 'qemu 7.2.0' (and "
           "vmha-pin-machines). The level is refreshed at every monitor, so an upgraded "
           "hypervisor is seen without restarting anything. Stopping the clone leaves the "
           "attributes in place.\n"
           "</longdesc>\n"
           "<shortdesc lang=\"en\">Publishes this node's hypervisor level (vmha)</shortdesc>\n"
           "<parameters>\n"
           "<parameter name=\"state_dir\" unique=\"0\" required=\"1\">\n"
           "<longdesc lang=\"en\">The guests' state store on shared storage: the same "
           "directory as the guests' state_dir parameter.</longdesc>\n"
           "<shortdesc lang=\"en\">State store</shortdesc>\n"
           "<content type=\"string\" />\n"
           "</parameter>\n"
           "<parameter name=\"hypervisor\" unique=\"0\" required=\"0\">\n"
           "<longdesc lang=\"en\">The local hypervisor, as a libvirt URI.</longdesc>\n"
           "<shortdesc lang=\"en\">Hypervisor URI</shortdesc>\n"
           "<content type=\"string\" default=\"qemu:///system\" />\n"
           "</parameter>\n"
           "</parameters>\n"
           "<actions>\n"
           "<action name=\"start\" timeout=\"30s\" />\n"
           "<action name=\"stop\" timeout=\"30s\" />\n"
           "<action name=\"monitor\" depth=\"0\" timeout=\"30s\" interval=\"10s\" />\n"
           "<action name=\"meta-data\" timeout=\"5s\" />\n"
           "<action name=\"validate-all\" timeout=\"10s\" />\n"
           "</actions>\n"
           "</resource-agent>\n");
}

static int validate(const struct node_params *p, struct vmha_err *why)
{
    const struct hv_backend *b;
    if (!p->state_dir[0])
        return vmha_err_set(why, -EINVAL, "the required parameter state_dir is not set");
    if (p->state_dir[0] != '/')
        return vmha_err_set(why, -EINVAL, "state_dir=%s is not an absolute path", p->state_dir);
    int r = store_check_state_dir(p->state_dir, why);
    if (r < 0)
        return r;
    return hv_backend_for_uri(p->hypervisor, &b, why);
}

static char *join_machines(char **list)
{
    size_t len = 1;
    for (char **m = list; m && *m; m++)
        len += strlen(*m) + 1;
    char *out = calloc(1, len);
    if (!out)
        return NULL;
    for (char **m = list; m && *m; m++) {
        if (mig_list_has(out, *m))
            continue;
        if (out[0])
            strcat(out, " ");
        strcat(out, *m);
    }
    return out;
}

/* Sets a transient attribute of this node when it differs from what the CIB holds. */
static int publish(const struct cluster_node *n, const char *me, const char *name,
                   const char *value, const struct vmha_deadline *dl, struct vmha_err *err)
{
    const char *now = n ? cluster_node_attr(n, name, true) : NULL;
    if (now && strcmp(now, value) == 0)
        return 0;
    int r = cluster_attr_update(me, name, value, dl, err);
    if (r == 0)
        cluster_log(LOG_NOTICE, "%s: %s=%s", me, name, value);
    return r;
}

/* "<dev> <ino> <size> <mtime>" of a file, to notice when it changed. */
static void signature(const char *path, char *buf, size_t size)
{
    struct stat st;
    if (!path || stat(path, &st) < 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%llu %llu %lld %lld.%09ld", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec);
}

/* Whether this node's kernel and initrd of the guest match the recorded digests. Hashing
 * a kernel costs tens of milliseconds: only when a file or the record changed. */
static int publish_boot(const struct node_params *p, const struct cluster_node *n, const char *me,
                        const char *guest, const struct vmha_deadline *dl, struct vmha_err *err)
{
    char attr[300], verdict[600], sig[600] = "";
    _cleanup_free_ char *gdir = NULL, *rec_path = NULL, *cache = NULL;
    snprintf(attr, sizeof(attr), "%s%s", MIG_ATTR_BOOT_PREFIX, guest);
    struct vmha_err e = {0};
    struct store_kv rec = {0};
    int r = store_guest_dir(p->state_dir, guest, &gdir, &e);
    if (r == 0)
        r = store_read(gdir, STATE_ARTIFACTS, &rec, &e);
    if (r == -ENOENT)
        return 0; /* boots no kernel directly, or not defined yet */
    if (r < 0) {
        /* A record nobody can read must not let the guest in. */
        snprintf(verdict, sizeof(verdict), "no: %.500s", e.msg);
        return publish(n, me, attr, verdict, dl, err);
    }
    if (asprintf(&rec_path, "%s/artifacts", gdir) < 0 ||
        asprintf(&cache, "%s/boot-%s.seen", p->rundir, guest) < 0) {
        store_kv_clear(&rec);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    size_t used = 0;
    const char *files[3] = {rec_path, store_kv_get(&rec, "kernel"), store_kv_get(&rec, "initrd")};
    for (int i = 0; i < 3; i++) {
        signature(files[i], sig + used, sizeof(sig) - used);
        used = strlen(sig);
        if (used + 1 < sizeof(sig))
            sig[used++] = '|', sig[used] = '\0';
    }
    store_kv_clear(&rec);
    _cleanup_free_ char *seen = NULL;
    const char *now = n ? cluster_node_attr(n, attr, true) : NULL;
    if (vmha_read_file(cache, 8192, &seen, &(struct vmha_err){0}) == 0 && now &&
        strcmp(seen, sig) == 0)
        return 0;
    bool recorded;
    if (boot_artifacts_verify_files(gdir, STATE_ARTIFACTS, &recorded, &e) < 0)
        snprintf(verdict, sizeof(verdict), "no: %.500s", e.msg);
    else
        snprintf(verdict, sizeof(verdict), "%s", MIG_VERDICT_OK);
    r = publish(n, me, attr, verdict, dl, err);
    if (r == 0)
        vmha_write_file(cache, sig, strlen(sig), false, NULL);
    return r;
}

/* The verdict of every guest in the store, for this node. */
static int publish_guests(const struct node_params *p, const struct cluster_node *n,
                          const struct mig_host *host, const struct vmha_deadline *dl,
                          struct vmha_err *err)
{
    DIR *d = opendir(p->state_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0; /* no guest has registered yet */
        return vmha_err_set(err, -errno, "cannot read %s: %s", p->state_dir, strerror(errno));
    }
    int r = 0;
    for (struct dirent *e; r == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !store_name_ok(e->d_name))
            continue;
        struct mig_record rec;
        struct vmha_err re = {0};
        int rr = mig_record_read(p->state_dir, e->d_name, &rec, &re);
        if (rr == -ENOTDIR)
            continue;
        if (rr == -ENOENT) {
            /* No migration record (no policy for this guest): its boot check still counts. */
            r = publish_boot(p, n, host->name, e->d_name, dl, err);
            continue;
        }
        char attr[300], verdict[420];
        mig_path_attr(e->d_name, attr, sizeof(attr));
        if (rr < 0) {
            /* A record nobody can read must not let the guest in. */
            snprintf(verdict, sizeof(verdict), "no: %.400s", re.msg);
        } else {
            struct mig_need need;
            mig_record_need(&rec, &need);
            mig_verdict(&need, host, verdict, sizeof(verdict));
        }
        r = publish(n, host->name, attr, verdict, dl, err);
        if (r == 0)
            r = publish_boot(p, n, host->name, e->d_name, dl, err);
    }
    closedir(d);
    return r;
}

static int refresh(const struct node_params *p, const struct vmha_deadline *dl,
                   struct vmha_err *why)
{
    const char *me = cluster_local_node(p->on_node);
    struct vmha_err e = {0};
    _cleanup_(cluster_view_clear) struct cluster_view v = {0};
    ocf_step("reading the cluster's node attributes");
    if (cluster_read(dl, &v, &e) < 0)
        return vmha_err_set(why, e.code, "%s", e.msg);
    const struct cluster_node *n = cluster_node_find(&v, me);

    const struct hv_backend *b;
    struct hv *hv = NULL;
    struct hv_caps caps = {0};
    if (hv_backend_for_uri(p->hypervisor, &b, why) < 0)
        return why->code;
    ocf_step("asking the hypervisor at %s for its level", p->hypervisor);
    int r = hv_open(p->hypervisor, dl, &hv, &e);
    if (r == 0) {
        r = hv_capabilities(hv, &caps, &e);
        hv_close(hv);
    }
    if (r < 0)
        return vmha_err_set(why, r, "cannot reach the hypervisor at %s: %s", p->hypervisor, e.msg);
    struct mig_level detected, level;
    char runs[96];
    r = mig_level_from_caps(&caps, &detected, &e);
    mig_level_format(&detected, runs, sizeof(runs));
    snprintf(runs + strlen(runs), sizeof(runs) - strlen(runs), ", %s %u.%u.%u", hv_backend_name(b),
             (unsigned)(caps.mgmt_version / 1000000), (unsigned)(caps.mgmt_version / 1000 % 1000),
             (unsigned)(caps.mgmt_version % 1000));
    _cleanup_free_ char *machines = r == 0 ? join_machines(caps.machine_types) : NULL;
    hv_caps_clear(&caps);
    if (r < 0)
        return vmha_err_set(why, r, "%s", e.msg);
    if (!machines)
        return vmha_err_set(why, -ENOMEM, "out of memory");

    const char *pin = n ? cluster_node_attr(n, MIG_ATTR_PIN_LEVEL, false) : NULL;
    const char *pin_machines = n ? cluster_node_attr(n, MIG_ATTR_PIN_MACHINES, false) : NULL;
    level = detected;
    if (pin && mig_level_parse(pin, detected.family, &level, &e) < 0)
        return vmha_err_set(why, -EINVAL, "node attribute %s of %s: %s", MIG_ATTR_PIN_LEVEL, me,
                            e.msg);
    if (pin && strcmp(level.family, detected.family) != 0)
        return vmha_err_set(why, -EINVAL,
                            "node attribute %s=%s of %s names another hypervisor "
                            "than the %s it runs",
                            MIG_ATTR_PIN_LEVEL, pin, me, detected.family);
    char lv[48], dv[48];
    mig_level_format(&level, lv, sizeof(lv));
    mig_level_format(&detected, dv, sizeof(dv));
    if (pin && mig_level_cmp(&level, &detected) > 0)
        cluster_log(LOG_WARNING, "%s is pinned to %s, above the %s it runs", me, lv, dv);
    struct mig_host host = {
        .name = me, .level = level, .machines = pin_machines ? pin_machines : machines};
    ocf_step("publishing this node's level");
    if (publish(n, me, MIG_ATTR_LEVEL, lv, dl, why) < 0 ||
        publish(n, me, MIG_ATTR_DETECTED, runs, dl, why) < 0 ||
        publish(n, me, MIG_ATTR_MACHINES, host.machines, dl, why) < 0)
        return why->code;
    ocf_step("publishing where guests may run");
    return publish_guests(p, n, &host, dl, why);
}

static int run(const char *action, const struct node_params *p)
{
    struct vmha_err why = {0};
    uint64_t timeout = p->timeout_ms ? p->timeout_ms : 30000;
    uint64_t margin = timeout / 10 < 500 ? 500 : timeout / 10 > 3000 ? 3000 : timeout / 10;
    struct vmha_deadline dl = vmha_deadline_in(timeout - margin);
    ocf_watchdog_arm(action, timeout, timeout - margin / 2);
    _cleanup_free_ char *active = NULL;
    if (asprintf(&active, "%s/node-%s.active", p->rundir, p->instance) < 0) {
        fputs("ocf-exit-reason:out of memory\n", stderr);
        return OCF_ERR_GENERIC;
    }
    int rc = OCF_SUCCESS;
    if (validate(p, &why) < 0) {
        rc = why.code == -EOPNOTSUPP ? OCF_ERR_INSTALLED : OCF_ERR_CONFIGURED;
    } else if (strcmp(action, "validate-all") == 0) {
        rc = OCF_SUCCESS;
    } else if (strcmp(action, "start") == 0) {
        mkdir(p->rundir, 0700);
        int fd = open(active, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            vmha_err_set(&why, -errno, "cannot create %s: %s", active, strerror(errno));
            rc = OCF_ERR_GENERIC;
        } else {
            close(fd);
            if (refresh(p, &dl, &why) < 0)
                rc = OCF_ERR_GENERIC;
        }
    } else if (strcmp(action, "stop") == 0) {
        if (unlink(active) < 0 && errno != ENOENT) {
            vmha_err_set(&why, -errno, "cannot remove %s: %s", active, strerror(errno));
            rc = OCF_ERR_GENERIC;
        }
    } else if (strcmp(action, "monitor") == 0 || strcmp(action, "status") == 0) {
        if (access(active, F_OK) < 0)
            return OCF_NOT_RUNNING;
        if (refresh(p, &dl, &why) < 0)
            rc = OCF_ERR_GENERIC;
    } else {
        fprintf(stderr, "ocf-exit-reason:action '%s' is not implemented\n", action);
        return OCF_ERR_UNIMPLEMENTED;
    }
    if (rc != OCF_SUCCESS) {
        cluster_log(LOG_ERR, "%s failed: %s", action, vmha_err_msg(&why));
        fprintf(stderr, "ocf-exit-reason:%s\n", vmha_err_msg(&why));
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: node {start|stop|monitor|validate-all|meta-data}\n", stderr);
        return OCF_ERR_ARGS;
    }
    if (strcmp(argv[1], "meta-data") == 0) {
        meta_data();
        return OCF_SUCCESS;
    }
    struct node_params p = {
        .hypervisor = env_or("OCF_RESKEY_hypervisor", "qemu:///system"),
        .state_dir = env_or("OCF_RESKEY_state_dir", ""),
        .instance = env_or("OCF_RESOURCE_INSTANCE", "node"),
        .on_node = env_or("OCF_RESKEY_CRM_meta_on_node", NULL),
        .rundir = env_or("VMHA_RUNDIR", VMHA_RUNDIR),
        .by_cluster = getenv("OCF_RESKEY_crm_feature_set") != NULL,
    };
    const char *t = getenv("OCF_RESKEY_CRM_meta_timeout");
    if (t && *t && vmha_parse_uint(t, UINT32_MAX, &p.timeout_ms) < 0) {
        fprintf(stderr, "ocf-exit-reason:OCF_RESKEY_CRM_meta_timeout=%s is not in ms\n", t);
        return OCF_ERR_ARGS;
    }
    cluster_log_init("vmha-node", p.by_cluster);
    return run(argv[1], &p);
}
