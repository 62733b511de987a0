/* Install boots and boot artifacts inside ocf:vmha:guest.
 *
 * The persistent definition is always written first (start_from defines config). Until the
 * install is done, a start boots the one-off install configuration laid over it and records
 * the install as running in the state store; a crash or failover before the installer
 * powers the guest off therefore runs the install again wherever the guest starts. When a
 * monitor finds that the installer powered the guest off, it records the install as done
 * and boots the persistent configuration at once, so Pacemaker never sees a failure. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "agent_private.h"
#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

bool ocf_install_configured(const struct ocf_params *p)
{
    return p->install_config[0] || p->install_kernel[0] || p->install_initrd[0] ||
           p->install_cmdline[0] || p->install_media[0];
}

static int check(const struct ocf_params *p, const char *name, const char *record,
                 const struct boot_artifacts *a, const char *pin_k, const char *pin_i,
                 bool do_record, struct vmha_err *why)
{
    _cleanup_(boot_key_clear) struct boot_key key = {0};
    struct vmha_err e = {0};
    if (p->artifact_key[0] && boot_key_load(p->artifact_key, &key, &e) < 0) {
        vmha_err_set(why, e.code, "%s", e.msg);
        return OCF_ERR_CONFIGURED;
    }
    _cleanup_free_ char *gdir = NULL;
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        vmha_err_set(why, e.code, "%s", e.msg);
        return OCF_ERR_CONFIGURED;
    }
    ocf_step("checking the boot artifacts of guest %s", name);
    const struct boot_record_ref ref = {.gdir = gdir, .guest = name, .name = record, .key = &key};
    int r = boot_artifacts_check(&ref, a, pin_k, pin_i,
                                 do_record && p->state_dir[0] ? BOOT_RECORD_IF_ABSENT : 0, &e);
    if (r == -ENODATA) {
        /* With a key, only the operator records: say what to check and what to run. */
        vmha_err_set(why, r,
                     "%s: with artifact_key set they are never recorded by a start; "
                     "check the kernel and initrd on this host, then run 'vmha boot --record %s'",
                     e.msg, name);
        return OCF_ERR_CONFIGURED;
    }
    if (r == -EBADMSG || r == -ENOENT) {
        vmha_err_set(why, r, "%s", e.msg);
        return OCF_ERR_INSTALLED; /* this host's files: another host may have good ones */
    }
    if (r == -EPERM) {
        vmha_err_set(why, r,
                     "%s; check the kernel and initrd, and if they are right, "
                     "'vmha boot --record %s' signs them again",
                     e.msg, name);
        return OCF_ERR_CONFIGURED; /* the record itself is not trustworthy, anywhere */
    }
    if (r < 0) {
        vmha_err_set(why, r, "cannot check the boot artifacts of guest %s: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    return OCF_SUCCESS;
}

enum ocf_rc ocf_boot_check(const struct ocf_params *p, const struct hv_guest_config *cfg,
                           bool record, struct vmha_err *why)
{
    if (!p->state_dir[0] && !p->kernel_sha256[0] && !p->initrd_sha256[0])
        return OCF_SUCCESS;
    struct boot_artifacts a = {
        .kernel = cfg->kernel, .initrd = cfg->initrd, .cmdline = cfg->cmdline};
    if (!p->state_dir[0]) {
        /* Pinned digests alone: nothing is recorded, everything is checked. */
        struct vmha_err e = {0};
        const struct boot_record_ref none = {
            .gdir = "/nonexistent", .guest = cfg->name, .name = STATE_ARTIFACTS};
        int r = boot_artifacts_check(&none, &a, p->kernel_sha256, p->initrd_sha256, 0, &e);
        if (r < 0) {
            vmha_err_set(why, r, "%s", e.msg);
            return r == -EBADMSG ? OCF_ERR_INSTALLED : OCF_ERR_GENERIC;
        }
        return OCF_SUCCESS;
    }
    int rc =
        check(p, cfg->name, STATE_ARTIFACTS, &a, p->kernel_sha256, p->initrd_sha256, record, why);
    /* The installer's files matter only until the install is done. */
    _cleanup_free_ char *gdir = NULL;
    struct install_record rec = {0};
    if (rc == OCF_SUCCESS && ocf_install_configured(p) && !p->install_config[0] &&
        store_guest_dir(p->state_dir, cfg->name, &gdir, &(struct vmha_err){0}) == 0 &&
        install_read(gdir, &rec, &(struct vmha_err){0}) == 0 && rec.state != INSTALL_DONE) {
        struct boot_artifacts ia = {
            .kernel = p->install_kernel[0] ? p->install_kernel : cfg->kernel,
            .initrd = p->install_initrd[0] ? p->install_initrd : cfg->initrd,
            .cmdline = p->install_cmdline[0] ? p->install_cmdline : cfg->cmdline};
        rc = check(p, cfg->name, STATE_INSTALL_ARTIFACTS, &ia, NULL, NULL, record, why);
    }
    return rc;
}

enum ocf_rc ocf_install_start(const struct ocf_params *p, struct hv *hv, const char *name,
                              const char *config_text, bool *started, struct vmha_err *why)
{
    *started = false;
    if (!ocf_install_configured(p))
        return OCF_SUCCESS;
    _cleanup_free_ char *gdir = NULL;
    struct install_record rec;
    struct vmha_err e = {0};
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        vmha_err_set(why, e.code, "%s", e.msg);
        return OCF_ERR_CONFIGURED;
    }
    if (install_read(gdir, &rec, &e) < 0) {
        vmha_err_set(why, e.code, "install state of guest %s: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    if (rec.state == INSTALL_DONE)
        return OCF_SUCCESS;
    /* The one-off configuration, with the UUID the persistent definition got. */
    struct hv_guest_info info;
    if (hv_lookup(hv, name, &info, &e) < 0) {
        vmha_err_set(why, e.code, "%s", e.msg);
        return OCF_ERR_GENERIC;
    }
    _cleanup_free_ char *oneoff = NULL, *install_text = NULL;
    if (p->install_config[0]) {
        if (vmha_read_file(p->install_config, 4u << 20, &install_text, &e) < 0) {
            vmha_err_set(why, e.code, "install_config: %s", e.msg);
            return OCF_ERR_INSTALLED;
        }
        struct hv_guest_config ic = {0};
        int r = hv_config_parse(hv_backend_of(hv), install_text, &ic, &e);
        bool same = r == 0 && strcmp(ic.name, name) == 0;
        hv_guest_config_clear(&ic);
        if (!same) {
            vmha_err_set(why, -EINVAL, "install_config %s %s", p->install_config,
                         r < 0 ? e.msg : "names another guest than config");
            return OCF_ERR_CONFIGURED;
        }
    }
    struct hv_boot_override o = {.kernel = p->install_kernel[0] ? p->install_kernel : NULL,
                                 .initrd = p->install_initrd[0] ? p->install_initrd : NULL,
                                 .cmdline = p->install_cmdline[0] ? p->install_cmdline : NULL,
                                 .media = p->install_media[0] ? p->install_media : NULL};
    if (hv_oneoff_config(hv_backend_of(hv), install_text ? install_text : config_text, &o,
                         info.uuid, &oneoff, &e) < 0) {
        vmha_err_set(why, e.code, "install configuration of guest %s: %s", name, e.msg);
        return OCF_ERR_CONFIGURED;
    }
    /* Recorded before the boot: a crash from here on reruns the install. */
    rec.state = INSTALL_RUNNING;
    rec.attempts++;
    rec.changed = (long long)time(NULL);
    snprintf(rec.host, sizeof(rec.host), "%s", cluster_local_node(p->on_node));
    if (install_write(gdir, &rec, &e) < 0) {
        vmha_err_set(why, e.code, "cannot record the install of guest %s: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    cluster_log(LOG_NOTICE,
                "guest %s: install boot %u (the persistent configuration is "
                "defined; it boots once the installer powers the guest off)",
                name, rec.attempts);
    ocf_step("starting the install boot of guest %s", name);
    if (hv_start(hv, name, oneoff, &e) < 0) {
        vmha_err_set(why, e.code, "install boot of guest %s: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    *started = true;
    return OCF_SUCCESS;
}

void ocf_install_arrived(const struct ocf_params *p, const char *name)
{
    if (!ocf_install_configured(p))
        return;
    _cleanup_free_ char *gdir = NULL;
    struct install_record rec;
    struct vmha_err e = {0};
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        cluster_log(LOG_WARNING, "guest %s: cannot record where its install runs: %s", name, e.msg);
        return;
    }
    if (install_read(gdir, &rec, &e) < 0 || rec.state != INSTALL_RUNNING)
        return;
    /* The installer runs here now: this host's monitor will see it finish. */
    snprintf(rec.host, sizeof(rec.host), "%s", cluster_local_node(p->on_node));
    if (install_write(gdir, &rec, &e) < 0)
        cluster_log(LOG_WARNING, "guest %s: cannot record where its install runs: %s", name, e.msg);
}

bool ocf_install_finished(const struct ocf_params *p, struct hv *hv, const char *name,
                          const char *config_text, const struct vmha_deadline *dl, int *rc,
                          struct vmha_err *why)
{
    if (!ocf_install_configured(p))
        return false;
    struct hv_guest_info info;
    struct vmha_err e = {0};
    if (hv_lookup(hv, name, &info, &e) < 0 || !info.powered_off)
        return false;
    _cleanup_free_ char *gdir = NULL;
    struct install_record rec;
    const char *me = cluster_local_node(p->on_node);
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0 || install_read(gdir, &rec, &e) < 0 ||
        rec.state != INSTALL_RUNNING || strcmp(rec.host, me) != 0)
        return false;
    rec.state = INSTALL_DONE;
    rec.changed = (long long)time(NULL);
    if (install_write(gdir, &rec, &e) < 0) {
        vmha_err_set(why, e.code,
                     "guest %s finished installing, but that cannot be recorded: "
                     "%s",
                     name, e.msg);
        *rc = OCF_ERR_GENERIC;
        return true;
    }
    cluster_log(LOG_NOTICE,
                "guest %s: the installer powered it off after %u install boot(s): "
                "install done, booting the persistent configuration",
                name, rec.attempts);
    /* A live migration during the install persisted the install configuration here:
     * define the real one again before booting it. */
    if (!config_text) {
        vmha_err_set(why, -ENOENT,
                     "guest %s installed, but its config cannot be read to "
                     "boot it",
                     name);
        *rc = OCF_ERR_GENERIC;
        return true;
    }
    ocf_step("starting guest %s after its install", name);
    if (hv_define(hv, config_text, &e) < 0 || hv_start(hv, name, NULL, &e) < 0) {
        vmha_err_set(why, e.code, "guest %s installed, but it does not start: %s", name, e.msg);
        *rc = OCF_ERR_GENERIC;
        return true;
    }
    for (;;) {
        if (hv_lookup(hv, name, &info, &e) == 0 && info.state == HV_STATE_RUNNING) {
            *rc = OCF_SUCCESS;
            return true;
        }
        if (!vmha_deadline_sleep(dl, 200)) {
            vmha_err_set(why, -ETIMEDOUT, "guest %s installed, but did not start in time", name);
            *rc = OCF_ERR_GENERIC;
            return true;
        }
    }
}
