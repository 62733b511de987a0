/* UEFI NVRAM inside ocf:vmha:guest: before every start the guest's local VARS file is made
 * the newest valid generation from the state store; the file is captured back after a
 * clean stop, around a live migration, and at monitors whenever it changed. All of it only
 * with state_dir, for guests that have NVRAM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/nvram.h"
#include "vmha/state.h"

#define NVRAM_FILE_MAX (64u << 20)

/* The guest's local VARS file, or NULL when it has none (not UEFI) or the store is off. */
static char *local_path(const struct ocf_params *p, struct hv *hv, const char *name)
{
    char *path = NULL;
    if (!p->state_dir[0] || !hv_can(hv, HV_FEAT_NVRAM))
        return NULL;
    struct vmha_err e = {0};
    if (hv_nvram_path(hv, name, &path, &e) < 0) {
        if (e.code != -ENOENT)
            cluster_log(LOG_WARNING, "cannot find the NVRAM of guest %s: %s", name, e.msg);
        return NULL;
    }
    return path;
}

/* The first boot: nothing stored yet. A file already here is not this guest's history: it is
 * set aside (kept in the store for forensics) and the firmware template is used. */
static enum ocf_rc first_boot(const char *gdir, const char *path, const char *name, const char *me,
                              const uint8_t *local, size_t local_len, bool have_local,
                              struct vmha_err *why)
{
    struct vmha_err e = {0};
    if (!have_local)
        return OCF_SUCCESS;
    if (nvgen_keep_forensic(gdir, local, local_len, me, "present before the first capture", &e) <
            0 ||
        unlink(path) < 0)
        return vmha_err_set(why, -EIO,
                            "cannot set aside the NVRAM file %s found "
                            "before the guest's first boot: %s",
                            path, e.msg),
               OCF_ERR_GENERIC;
    cluster_log(LOG_WARNING,
                "guest %s: %s existed before its first boot: kept for "
                "forensics, the firmware template is used",
                name, path);
    return OCF_SUCCESS;
}

/* The local file made generation g (gen_buf), unless it is that already; a different one is
 * kept in the store for forensics before it is replaced. */
static enum ocf_rc put_generation(const char *gdir, const char *path, const char *name,
                                  const char *me, const struct nvram_gen *g, const uint8_t *gen_buf,
                                  size_t gen_len, const uint8_t *local, size_t local_len,
                                  bool have_local, struct vmha_err *why)
{
    struct vmha_err e = {0};
    char digest[65] = "";
    if (have_local)
        nvram_digest(local, local_len, digest);
    if (have_local && strcmp(digest, g->digest) == 0)
        return OCF_SUCCESS;
    if (have_local) {
        if (nvgen_keep_forensic(gdir, local, local_len, me,
                                "stale or foreign local file replaced at start", &e) < 0)
            cluster_log(LOG_WARNING, "guest %s: cannot keep the replaced NVRAM file: %s", name,
                        e.msg);
        cluster_log(LOG_WARNING,
                    "guest %s: %s differs from NVRAM generation %lu: "
                    "replaced (the old file is kept in the store for forensics)",
                    name, path, g->num);
    }
    if (nvram_write_file(path, gen_buf, gen_len, &e) < 0) {
        vmha_err_set(why, e.code, "cannot restore the NVRAM of guest %s: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    return OCF_SUCCESS;
}

enum ocf_rc ocf_nvram_restore(const struct ocf_params *p, struct hv *hv, const char *name,
                              struct vmha_err *why, char *warning, size_t warning_size)
{
    warning[0] = '\0';
    _cleanup_free_ char *path = local_path(p, hv, name);
    if (!path)
        return OCF_SUCCESS;
    const char *me = cluster_local_node(p->on_node);
    char note[1024];
    _cleanup_free_ char *gdir = NULL;
    struct vmha_err e = {0};
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        vmha_err_set(why, e.code, "NVRAM of guest %s cannot be restored: %s", name, e.msg);
        return OCF_ERR_CONFIGURED;
    }
    ocf_step("restoring the NVRAM of guest %s", name);
    _cleanup_free_ uint8_t *gen_buf = NULL, *local = NULL;
    size_t gen_len = 0, local_len = 0;
    struct nvram_gen g;
    int r = nvgen_newest_valid(gdir, &gen_buf, &gen_len, &g, note, sizeof(note), &e);
    bool have_local = vmha_read_blob(path, NVRAM_FILE_MAX, &local, &local_len, &e) == 0;
    if (r == -ENOENT && !note[0])
        return first_boot(gdir, path, name, me, local, local_len, have_local, why);
    if (r < 0) {
        vmha_err_set(why, r, "NVRAM of guest %s cannot be restored: %s", name, e.msg);
        return OCF_ERR_GENERIC;
    }
    unsigned long booted = 0;
    if (nvgen_booted(gdir, &booted, &e) < 0)
        cluster_log(LOG_WARNING, "guest %s: %s", name, e.msg);
    if (g.num < booted) { /* a generation never goes backwards */
        vmha_err_set(why, -ESTALE,
                     "refusing to start guest %s: its newest intact NVRAM "
                     "generation is %lu, but it already booted with generation %lu (%s); "
                     "import a good copy with vmha nvram import",
                     name, g.num, booted, note);
        return OCF_ERR_GENERIC;
    }
    if (note[0]) {
        snprintf(warning, warning_size, "guest %s boots with NVRAM generation %lu: %s", name, g.num,
                 note);
        cluster_log(LOG_ERR, "%s", warning);
    }
    enum ocf_rc rc = put_generation(gdir, path, name, me, &g, gen_buf, gen_len, local, local_len,
                                    have_local, why);
    if (rc != OCF_SUCCESS)
        return rc;
    if (nvgen_set_booted(gdir, g.num, me, &e) < 0)
        cluster_log(LOG_WARNING, "guest %s: %s", name, e.msg);
    cluster_log(LOG_INFO, "guest %s boots with NVRAM generation %lu (captured on %s at %s)", name,
                g.num, g.host, g.reason);
    return OCF_SUCCESS;
}

/* Reads the VARS file until two reads agree and it validates: a file being written while
 * we read is never stored. */
static int read_settled(const char *path, uint8_t **buf, size_t *len, struct vmha_err *err)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        size_t la, lb;
        int r = vmha_read_blob(path, NVRAM_FILE_MAX, &a, &la, err);
        if (r < 0)
            return r;
        struct nvram nv;
        struct vmha_err e = {0};
        if (nvram_parse(a, la, &nv, &e) < 0) {
            vmha_err_set(err, -EINVAL, "%s: %s", path, e.msg);
            usleep(100 * 1000);
            continue;
        }
        nvram_clear(&nv);
        if ((r = vmha_read_blob(path, NVRAM_FILE_MAX, &b, &lb, err)) < 0)
            return r;
        if (la == lb && memcmp(a, b, la) == 0) {
            *buf = TAKE_PTR(a);
            *len = la;
            return 0;
        }
        usleep(100 * 1000);
    }
    return err->code ? err->code : vmha_err_set(err, -EAGAIN, "%s kept changing", path);
}

void ocf_nvram_capture(const struct ocf_params *p, struct hv *hv, const char *name,
                       const char *reason, const struct vmha_deadline *dl)
{
    _cleanup_free_ char *path = local_path(p, hv, name);
    if (!path)
        return;
    _cleanup_free_ char *gdir = NULL;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    struct vmha_err e = {0};
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        cluster_log(LOG_WARNING, "guest %s: NVRAM not captured (%s): %s", name, reason, e.msg);
        return;
    }
    ocf_step("capturing the NVRAM of guest %s", name);
    if (read_settled(path, &buf, &len, &e) < 0) {
        cluster_log(LOG_WARNING, "guest %s: NVRAM not captured (%s): %s", name, reason, e.msg);
        return;
    }
    struct nvram_gen g;
    bool stored;
    int r = nvgen_store(gdir, buf, len, cluster_local_node(p->on_node), reason, p->nvram_keep, dl,
                        &g, &stored, &e);
    if (r < 0)
        cluster_log(LOG_WARNING, "guest %s: NVRAM not captured (%s): %s", name, reason, e.msg);
    else if (stored)
        cluster_log(LOG_NOTICE, "guest %s: NVRAM generation %lu captured (%s)", name, g.num,
                    reason);
}

void ocf_nvram_watch(const struct ocf_params *p, struct hv *hv, const char *name,
                     const struct vmha_deadline *dl)
{
    _cleanup_free_ char *path = local_path(p, hv, name);
    if (!path)
        return;
    /* What the file looked like at the last capture, kept in the run directory. */
    _cleanup_free_ char *seen_path = NULL, *seen = NULL;
    char now[128];
    if (asprintf(&seen_path, "%s/nvram-%s.seen", p->rundir, name) < 0)
        return;
    struct stat st;
    if (stat(path, &st) < 0)
        return;
    snprintf(now, sizeof(now), "%lld.%09ld %lld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
             (long long)st.st_size);
    if (vmha_read_file(seen_path, sizeof(now), &seen, NULL) == 0 && strcmp(seen, now) == 0)
        return;
    ocf_nvram_capture(p, hv, name, "periodic", dl);
    mkdir(p->rundir, 0700);
    /* Replaced, never written through whatever is at that name. */
    vmha_write_file(seen_path, now, strlen(now), false, NULL);
}

void ocf_nvram_capture_arrived(const struct ocf_params *p, struct hv *hv, const char *name,
                               const struct vmha_deadline *dl)
{
    _cleanup_free_ char *path = local_path(p, hv, name);
    if (!path)
        return;
    /* QEMU writes the migrated flash back to this host's file shortly after the migration
     * ends; until then the file is whatever was here (an old generation, or the template
     * libvirt copied). Wait for it, so that neither is ever stored as the newest. */
    char template_digest[65] = "";
    struct hv_guest_config live = {0};
    struct vmha_err e = {0};
    if (hv_current_config(hv, name, &live, &e) == 0 && live.nvram_template) {
        _cleanup_free_ uint8_t *t = NULL;
        size_t tl;
        if (vmha_read_blob(live.nvram_template, NVRAM_FILE_MAX, &t, &tl, &e) == 0)
            nvram_digest(t, tl, template_digest);
    }
    hv_guest_config_clear(&live);
    _cleanup_free_ char *gdir = NULL;
    if (store_guest_dir(p->state_dir, name, &gdir, &e) < 0) {
        cluster_log(LOG_WARNING, "guest %s: NVRAM not captured after migration: %s", name, e.msg);
        return;
    }
    struct vmha_deadline until = vmha_deadline_min(*dl, vmha_deadline_in(5000));
    ocf_step("capturing the NVRAM of guest %s after its migration", name);
    do {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        if (read_settled(path, &buf, &len, &e) < 0)
            continue;
        char digest[65];
        nvram_digest(buf, len, digest);
        if (strcmp(digest, template_digest) == 0)
            continue; /* not written back yet */
        struct nvram_gen g;
        bool stored;
        int r = nvgen_store(gdir, buf, len, cluster_local_node(p->on_node), "migrate",
                            p->nvram_keep, dl, &g, &stored, &e);
        if (r == -ESTALE)
            continue; /* an old file still: not written back yet */
        if (r < 0)
            break;
        if (stored)
            cluster_log(LOG_NOTICE, "guest %s: NVRAM generation %lu captured after migration", name,
                        g.num);
        return;
    } while (vmha_deadline_sleep(&until, 200));
    cluster_log(LOG_WARNING,
                "guest %s: NVRAM not captured after migration (%s); the next "
                "monitor captures it",
                name, e.msg[0] ? e.msg : "the file was not written back");
}
