/* What a backend fills in: its table of operations. Only hv/ sees it; everyone else goes
 * through hv.h's typed functions, which answer -EOPNOTSUPP for an empty slot. What a
 * backend can do (hv_can) follows from which optional slots it fills (hv.c). */
#pragma once

#include "vmha/hv.h"

struct hv_conn;

struct hv_backend {
    const char *name;
    const char *daemon; /* for hints: "libvirtd", NULL when there is none */
    /* Every backend. */
    int (*config_parse)(const char *text, struct hv_guest_config *ret, struct vmha_err *err);
    int (*migrate_target_template)(const char *uri, const char *transport, char *ret, size_t size,
                                   struct vmha_err *err);
    int (*migrate_target_check)(const char *target, struct vmha_err *err);
    int (*replication_check)(const struct hv_guest_config *cfg, bool tls, struct vmha_err *err);
    int (*open)(const char *uri, const struct vmha_deadline *dl, struct hv_conn **ret,
                struct vmha_err *err);
    void (*close)(struct hv_conn *c);
    int (*capabilities)(struct hv_conn *c, struct hv_caps *ret, struct vmha_err *err);
    int (*lookup)(struct hv_conn *c, const char *name_or_uuid, struct hv_guest_info *ret,
                  struct vmha_err *err);
    int (*current_config)(struct hv_conn *c, const char *name, struct hv_guest_config *ret,
                          struct vmha_err *err);
    int (*define)(struct hv_conn *c, const char *config_text, struct vmha_err *err);
    int (*undefine)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*start)(struct hv_conn *c, const char *name, const char *oneoff_config,
                 struct vmha_err *err);
    int (*resume)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*shutdown)(struct hv_conn *c, const char *name, const char *mode, struct vmha_err *err);
    int (*destroy)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*migrate)(struct hv_conn *c, const char *name, const struct hv_migrate_params *p,
                   struct vmha_err *err);
    /* HV_FEAT_NVRAM */
    int (*nvram_path)(struct hv_conn *c, const char *name, char **ret, struct vmha_err *err);
    /* HV_FEAT_INSTALL_BOOT */
    int (*oneoff_config)(const char *config_text, const struct hv_boot_override *o,
                         const char *uuid, char **ret, struct vmha_err *err);
    /* HV_FEAT_JOB_PROGRESS */
    int (*job_progress)(struct hv_conn *c, const char *name, struct hv_progress *ret,
                        struct vmha_err *err);
    /* HV_FEAT_CKPT: all six */
    int (*ckpt_hold)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*ckpt_release)(struct hv_conn *c, const char *name, bool stop, struct vmha_err *err);
    int (*ckpt_take)(struct hv_conn *c, const char *name, int fd, const struct vmha_deadline *dl,
                     struct hv_ckpt_stats *ret, struct vmha_err *err);
    int (*ckpt_memory)(struct hv_conn *c, const char *name, int *fd, int *pid,
                       struct vmha_err *err);
    int (*ckpt_restore)(struct hv_conn *c, const char *dev_path, const char *ram_path,
                        const char *config_text, struct vmha_err *err);
    int (*ckpt_image)(const unsigned char *dev, size_t dev_len, const unsigned char *ram,
                      size_t ram_size, FILE *out, struct vmha_err *err);
    /* HV_FEAT_DISK_MIRROR: all three */
    int (*mirror_start)(struct hv_conn *c, const char *name, const char *target, const char *socket,
                        struct vmha_err *err);
    int (*mirror_ready)(struct hv_conn *c, const char *name, const char *target,
                        struct vmha_err *err);
    int (*mirror_stop)(struct hv_conn *c, const char *name, const char *target,
                       struct vmha_err *err);
    /* HV_FEAT_NATIVE_REMUS: all five */
    int (*remus_send)(struct hv_conn *c, const char *name, int fd, uint64_t interval_ms,
                      const struct vmha_deadline *dl, struct vmha_err *err);
    int (*remus_receive)(struct hv_conn *c, int fd, const char *config_text,
                         const struct vmha_deadline *dl, char *ret_name, size_t size,
                         struct vmha_err *err);
    int (*remus_suspended)(struct hv_conn *c, const char *name, uint32_t *cache);
    int (*replica_promote)(struct hv_conn *c, const char *name, struct vmha_err *err);
    int (*replica_discard)(struct hv_conn *c, const char *name, struct vmha_err *err);
};

extern const struct hv_backend hv_libvirt_backend;
/* Only in builds with the libxl backend (VMHA_HAVE_LIBXL). */
extern const struct hv_backend hv_libxl_backend;
