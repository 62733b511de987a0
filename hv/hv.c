/* Backend selection and the backend-neutral helpers of hv/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/hv.h"

static const char *const state_names[] = {
    [HV_STATE_ABSENT] = "absent",     [HV_STATE_SHUTOFF] = "shut off",
    [HV_STATE_RUNNING] = "running",   [HV_STATE_PAUSED] = "paused",
    [HV_STATE_SHUTDOWN] = "shutting down", [HV_STATE_CRASHED] = "crashed",
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
    *c = (struct hv_guest_config){0};
}

void hv_caps_clear(struct hv_caps *caps)
{
    for (char **m = caps->machine_types; m && *m; m++)
        free(*m);
    free(caps->machine_types);
    *caps = (struct hv_caps){0};
}

int hv_backend_for_uri(const char *uri, const struct hv_ops **ret, struct vmha_err *err)
{
    if (strcmp(uri, "libxl") == 0 || strncmp(uri, "libxl:", 6) == 0) {
#ifdef VMHA_HAVE_LIBXL
        *ret = &hv_libxl_ops;
        return 0;
#else
        return vmha_err_set(err, -EOPNOTSUPP,
                            "hypervisor=%s needs the libxl backend, which this build of vmha "
                            "does not include",
                            uri);
#endif
    }
    *ret = &hv_libvirt_ops;
    return 0;
}

const char *hv_family_of(const struct hv_guest_config *c)
{
    const char *t = c->virt_type ? c->virt_type : "";
    return strcmp(t, "kvm") == 0 || strcmp(t, "qemu") == 0 ? "qemu" : t;
}
