/* Backend selection and the backend-neutral helpers of hv/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv_backend.h"

static const char *const state_names[] = {
    [HV_STATE_ABSENT] = "absent",
    [HV_STATE_SHUTOFF] = "shut off",
    [HV_STATE_RUNNING] = "running",
    [HV_STATE_PAUSED] = "paused",
    [HV_STATE_SHUTDOWN] = "shutting down",
    [HV_STATE_CRASHED] = "crashed",
    [HV_STATE_PMSUSPENDED] = "suspended by the guest",
};

const char *hv_state_to_string(enum hv_state s)
{
    if (s < 0 || (size_t)s >= sizeof(state_names) / sizeof(state_names[0]))
        return "invalid";
    return state_names[s];
}

void hv_guest_config_clear(struct hv_guest_config *c)
{
    free(c->name);
    free(c->virt_type);
    free(c->arch);
    free(c->machine);
    free(c->kernel);
    free(c->initrd);
    free(c->cmdline);
    free(c->loader);
    free(c->nvram);
    free(c->nvram_template);
    for (size_t i = 0; i < c->ndisks; i++) {
        free(c->disks[i].target);
        free(c->disks[i].source);
        free(c->disks[i].format);
    }
    free(c->disks);
    *c = (struct hv_guest_config){0};
}

void hv_caps_clear(struct hv_caps *caps)
{
    for (char **m = caps->machine_types; m && *m; m++)
        free(*m);
    free(caps->machine_types);
    *caps = (struct hv_caps){0};
}

int hv_backend_for_uri(const char *uri, const struct hv_backend **ret, struct vmha_err *err)
{
    if (strcmp(uri, "libxl") == 0 || strncmp(uri, "libxl:", 6) == 0) {
#ifdef VMHA_HAVE_LIBXL
        *ret = &hv_libxl_backend;
        return 0;
#else
        return vmha_err_set(err, -EOPNOTSUPP,
                            "hypervisor=%s needs the libxl backend, which this build of vmha "
                            "does not include",
                            uri);
#endif
    }
    *ret = &hv_libvirt_backend;
    return 0;
}

const char *hv_backend_name(const struct hv_backend *b)
{
    return b->name;
}

const char *hv_backend_daemon(const struct hv_backend *b)
{
    return b->daemon;
}

bool hv_backend_can(const struct hv_backend *b, enum hv_feature f)
{
    switch (f) {
    case HV_FEAT_NVRAM:
        return b->nvram_path;
    case HV_FEAT_INSTALL_BOOT:
        return b->oneoff_config;
    case HV_FEAT_JOB_PROGRESS:
        return b->job_progress;
    case HV_FEAT_CKPT:
        return b->ckpt_hold && b->ckpt_release && b->ckpt_take && b->ckpt_memory &&
               b->ckpt_restore && b->ckpt_image;
    case HV_FEAT_DISK_MIRROR:
        return b->mirror_start && b->mirror_ready && b->mirror_stop;
    case HV_FEAT_NATIVE_REMUS:
        return b->remus_send && b->remus_receive && b->remus_suspended && b->replica_promote &&
               b->replica_discard;
    }
    return false;
}

/* An empty slot answers for itself. */
static int lacks(const struct hv_backend *b, const char *what, struct vmha_err *err)
{
    return vmha_err_set(err, -EOPNOTSUPP, "the %s backend does not support %s", b->name, what);
}

#define PURE(b, slot, what, ...) ((b)->slot ? (b)->slot(__VA_ARGS__) : lacks(b, what, err))
#define CALL(h, slot, what, ...)                                                                   \
    ((h)->b->slot ? (h)->b->slot((h)->c, __VA_ARGS__) : lacks((h)->b, what, err))

int hv_config_parse(const struct hv_backend *b, const char *text, struct hv_guest_config *ret,
                    struct vmha_err *err)
{
    return PURE(b, config_parse, "configuration files", text, ret, err);
}

int hv_oneoff_config(const struct hv_backend *b, const char *config_text,
                     const struct hv_boot_override *o, const char *uuid, char **ret,
                     struct vmha_err *err)
{
    return PURE(b, oneoff_config, "install boots", config_text, o, uuid, ret, err);
}

int hv_migrate_target_template(const struct hv_backend *b, const char *uri, const char *transport,
                               char *ret, size_t size, struct vmha_err *err)
{
    return PURE(b, migrate_target_template, "live migration", uri, transport, ret, size, err);
}

int hv_migrate_target_check(const struct hv_backend *b, const char *target, struct vmha_err *err)
{
    return b->migrate_target_check ? b->migrate_target_check(target, err) : 0;
}

int hv_replication_check(const struct hv_backend *b, const struct hv_guest_config *cfg, bool tls,
                         struct vmha_err *err)
{
    if (!hv_backend_can(b, HV_FEAT_CKPT) && !hv_backend_can(b, HV_FEAT_NATIVE_REMUS))
        return lacks(b, "checkpoint replication", err);
    return b->replication_check ? b->replication_check(cfg, tls, err) : 0;
}

struct hv {
    const struct hv_backend *b;
    struct hv_conn *c;
};

int hv_open(const char *uri, const struct vmha_deadline *dl, struct hv **ret, struct vmha_err *err)
{
    const struct hv_backend *b;
    int r = hv_backend_for_uri(uri, &b, err);
    if (r < 0)
        return r;
    struct hv *h = calloc(1, sizeof(*h));
    if (!h)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    h->b = b;
    if ((r = b->open(uri, dl, &h->c, err)) < 0) {
        free(h);
        return r;
    }
    *ret = h;
    return 0;
}

void hv_close(struct hv *h)
{
    if (!h)
        return;
    h->b->close(h->c);
    free(h);
}

void hv_closep(struct hv **h)
{
    hv_close(*h);
    *h = NULL;
}

const struct hv_backend *hv_backend_of(const struct hv *h)
{
    return h->b;
}

bool hv_can(const struct hv *h, enum hv_feature f)
{
    return hv_backend_can(h->b, f);
}

int hv_capabilities(struct hv *h, struct hv_caps *ret, struct vmha_err *err)
{
    return CALL(h, capabilities, "capabilities", ret, err);
}

int hv_lookup(struct hv *h, const char *name_or_uuid, struct hv_guest_info *ret,
              struct vmha_err *err)
{
    return CALL(h, lookup, "guest lookup", name_or_uuid, ret, err);
}

int hv_current_config(struct hv *h, const char *name, struct hv_guest_config *ret,
                      struct vmha_err *err)
{
    return CALL(h, current_config, "reading a guest's configuration", name, ret, err);
}

int hv_job_progress(struct hv *h, const char *name, struct hv_progress *ret, struct vmha_err *err)
{
    return CALL(h, job_progress, "reading a migration's progress", name, ret, err);
}

int hv_define(struct hv *h, const char *config_text, struct vmha_err *err)
{
    return CALL(h, define, "defining guests", config_text, err);
}

int hv_undefine(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, undefine, "undefining guests", name, err);
}

int hv_start(struct hv *h, const char *name, const char *oneoff_config, struct vmha_err *err)
{
    if (oneoff_config && !hv_can(h, HV_FEAT_INSTALL_BOOT))
        return lacks(h->b, "install boots", err);
    return CALL(h, start, "starting guests", name, oneoff_config, err);
}

int hv_resume(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, resume, "resuming guests", name, err);
}

int hv_shutdown(struct hv *h, const char *name, const char *mode, struct vmha_err *err)
{
    return CALL(h, shutdown, "shutting guests down", name, mode, err);
}

int hv_destroy(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, destroy, "destroying guests", name, err);
}

int hv_migrate(struct hv *h, const char *name, const struct hv_migrate_params *p,
               struct vmha_err *err)
{
    return CALL(h, migrate, "live migration", name, p, err);
}

int hv_nvram_path(struct hv *h, const char *name, char **ret, struct vmha_err *err)
{
    return CALL(h, nvram_path, "UEFI NVRAM", name, ret, err);
}

int hv_mirror_start(struct hv *h, const char *name, const char *target, const char *socket,
                    struct vmha_err *err)
{
    return CALL(h, mirror_start, "disk mirrors", name, target, socket, err);
}

int hv_mirror_ready(struct hv *h, const char *name, const char *target, struct vmha_err *err)
{
    return CALL(h, mirror_ready, "disk mirrors", name, target, err);
}

int hv_mirror_stop(struct hv *h, const char *name, const char *target, struct vmha_err *err)
{
    return CALL(h, mirror_stop, "disk mirrors", name, target, err);
}

int hv_ckpt_hold(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, ckpt_hold, "checkpoints", name, err);
}

int hv_ckpt_release(struct hv *h, const char *name, bool stop, struct vmha_err *err)
{
    return CALL(h, ckpt_release, "checkpoints", name, stop, err);
}

int hv_ckpt_take(struct hv *h, const char *name, int fd, const struct vmha_deadline *dl,
                 struct hv_ckpt_stats *ret, struct vmha_err *err)
{
    return CALL(h, ckpt_take, "checkpoints", name, fd, dl, ret, err);
}

int hv_ckpt_memory(struct hv *h, const char *name, int *fd, int *pid, struct vmha_err *err)
{
    return CALL(h, ckpt_memory, "checkpoints", name, fd, pid, err);
}

int hv_ckpt_restore(struct hv *h, const char *dev_path, const char *ram_path,
                    const char *config_text, struct vmha_err *err)
{
    return CALL(h, ckpt_restore, "checkpoints", dev_path, ram_path, config_text, err);
}

int hv_ckpt_image(const struct hv_backend *b, const unsigned char *dev, size_t dev_len,
                  const unsigned char *ram, size_t ram_size, FILE *out, struct vmha_err *err)
{
    return PURE(b, ckpt_image, "checkpoints", dev, dev_len, ram, ram_size, out, err);
}

int hv_remus_send(struct hv *h, const char *name, int fd, uint64_t interval_ms,
                  const struct vmha_deadline *dl, struct vmha_err *err)
{
    return CALL(h, remus_send, "its own Remus", name, fd, interval_ms, dl, err);
}

int hv_remus_receive(struct hv *h, int fd, const char *config_text, const struct vmha_deadline *dl,
                     char *ret_name, size_t size, struct vmha_err *err)
{
    return CALL(h, remus_receive, "its own Remus", fd, config_text, dl, ret_name, size, err);
}

int hv_remus_suspended(struct hv *h, const char *name, uint32_t *cache)
{
    return h->b->remus_suspended ? h->b->remus_suspended(h->c, name, cache) : -EOPNOTSUPP;
}

int hv_replica_promote(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, replica_promote, "its own Remus", name, err);
}

int hv_replica_discard(struct hv *h, const char *name, struct vmha_err *err)
{
    return CALL(h, replica_discard, "its own Remus", name, err);
}

const char *hv_family_of(const struct hv_guest_config *c)
{
    const char *t = c->virt_type ? c->virt_type : "";
    return strcmp(t, "kvm") == 0 || strcmp(t, "qemu") == 0 ? "qemu" : t;
}
