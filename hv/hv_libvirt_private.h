/* What hv_libvirt.c shares with hv_libvirt_xml.c and the unit tests. */
#pragma once

#include <stdbool.h>

#include "vmha/hv.h"

/* Maps virDomainState plus "is it active" to the cluster's view of a guest. */
enum hv_state hv_libvirt_state(int vir_state, bool active);

/* Parses a libvirt domain XML (pure). */
int hv_libvirt_config_parse(const char *xml, struct hv_guest_config *ret, struct vmha_err *err);

/* Collects the machine types of hvm guests for arch (NULL: the host's) from a capabilities XML, NULL-terminated,
 * aliases and canonical names alike, without duplicates. */
int hv_libvirt_machines_from_caps(const char *xml, const char *arch, char ***ret,
                                  struct vmha_err *err);


int hv_libvirt_oneoff_config(const char *config_text, const struct hv_boot_override *o,
                             const char *uuid, char **ret, struct vmha_err *err);
