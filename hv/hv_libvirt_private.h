/* What hv_libvirt.c shares with hv_libvirt_xml.c and the unit tests. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include <libvirt/libvirt.h>

#include "hv_backend.h"
#include "vmha/cleanup.h"

VMHA_DEFINE_CLEANUP(virDomainPtr, virDomainFree)

/* The page QEMU's RAM and the replicator's memory file are kept in. */
#define HV_LIBVIRT_PAGE 4096

struct hv_conn {
    virConnectPtr conn;
};

/* Records libvirt's last error after our own words; returns code (-ENOENT for no domain). */
int hv_libvirt_err(struct vmha_err *err, int code, const char *what);
/* The domain named (or with the UUID) id; -ENOENT when this host does not know it. */
int hv_libvirt_domain(struct hv_conn *c, const char *id, virDomainPtr *ret, struct vmha_err *err);

/* Disk mirrors (hv_libvirt_mirror.c). */
int hv_libvirt_mirror_start(struct hv_conn *c, const char *name, const char *target,
                            const char *socket, struct vmha_err *err);
int hv_libvirt_mirror_ready(struct hv_conn *c, const char *name, const char *target,
                            struct vmha_err *err);
int hv_libvirt_mirror_stop(struct hv_conn *c, const char *name, const char *target,
                           struct vmha_err *err);

/* Checkpoints (hv_libvirt_ckpt.c). */
int hv_libvirt_ckpt_hold(struct hv_conn *c, const char *name, struct vmha_err *err);
int hv_libvirt_ckpt_release(struct hv_conn *c, const char *name, bool stop, struct vmha_err *err);
int hv_libvirt_ckpt_take(struct hv_conn *c, const char *name, int fd,
                         const struct vmha_deadline *dl, struct hv_ckpt_stats *ret,
                         struct vmha_err *err);
int hv_libvirt_ckpt_memory(struct hv_conn *c, const char *name, int *fd, int *pid,
                           struct vmha_err *err);
int hv_libvirt_ckpt_restore(struct hv_conn *c, const char *dev_path, const char *ram_path,
                            const char *config_text, struct vmha_err *err);
int hv_libvirt_replication_check(const struct hv_guest_config *cfg, bool tls, struct vmha_err *err);
/* The save image a restore reads (hv_libvirt_image.c): the device state ckpt_take wrote
 * (dev: libvirt's save header, the XML, QEMU's stream without the shared RAM) with the RAM
 * (ram_size bytes) merged back in, as a restore without x-ignore-shared reads it; and the
 * same from the two files into path. */
int hv_libvirt_ckpt_image(const unsigned char *dev, size_t dev_len, const unsigned char *ram,
                          size_t ram_size, FILE *out, struct vmha_err *err);
int hv_libvirt_ckpt_image_file(const char *dev_path, const char *ram_path, const char *path,
                               struct vmha_err *err);
/* The XML a checkpoint is restored with: the guest's own config_text, never the XML the
 * checkpoint carries (image_xml), which must name the same guest; its UUID goes into the
 * config when the config names none (libvirt checks that the two describe one machine). */
int hv_libvirt_restore_config(const char *config_text, const char *image_xml, char **ret,
                              struct vmha_err *err);
/* The header of a libvirt QEMU save image carrying xml (pure): *len bytes in *ret. */
int hv_libvirt_save_header(const char *xml, unsigned char **ret, size_t *len);

/* Maps virDomainState plus "is it active" to the cluster's view of a guest. */
enum hv_state hv_libvirt_state(int vir_state, bool active);

/* Parses a libvirt domain XML (pure). */
int hv_libvirt_config_parse(const char *xml, struct hv_guest_config *ret, struct vmha_err *err);
/* Pure: in a running domain's XML, whether the block copy of disk target is ready (1: the
 * whole disk copied, writes go to both), still copying (0), or absent (-ENOENT). */
int hv_libvirt_mirror_ready_in(const char *xml, const char *target);

/* Collects the machine types of hvm guests for arch (NULL: the host's) from a capabilities XML,
 * NULL-terminated, aliases and canonical names alike, without duplicates. */
int hv_libvirt_machines_from_caps(const char *xml, const char *arch, char ***ret,
                                  struct vmha_err *err);

int hv_libvirt_oneoff_config(const char *config_text, const struct hv_boot_override *o,
                             const char *uuid, char **ret, struct vmha_err *err);
