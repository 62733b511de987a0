/* Every difference between libxenlight versions that vmha meets, in one place. libxenlight is
 * API-stable only per LIBXL_API_VERSION and not ABI-stable: vmha pins the API it was written
 * against, and the rest of hv_libxl*.c calls these wrappers, never a version-dependent call. */
#pragma once

/* The 4.13 API (Xen 4.13 to 4.17 at least): asynchronous-capable shutdown, destroy, pause and
 * retrieve_domain_configuration, restore with a send-back fd. */
#define LIBXL_API_VERSION 0x041300

#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>

#if !defined(LIBXL_HAVE_BUILDINFO_KERNEL) || !defined(LIBXL_HAVE_DOMAIN_CREATE_RESTORE_SEND_BACK_FD)
#error "vmha's libxl backend needs libxenlight 4.13 or later"
#endif

/* Direct kernel boot: kernel, ramdisk and command line are top-level build fields since 4.10
 * (before, they lived in u.pv). */
static inline void hv_xl_set_kernel(libxl_domain_build_info *b, char *kernel, char *ramdisk,
                                    char *cmdline)
{
    b->kernel = kernel;
    b->ramdisk = ramdisk;
    b->cmdline = cmdline;
}

/* Restoring a stream that libxl wrote (version 2): without stream_version, libxl treats it
 * as a legacy stream and runs a converter that is not there. */
static inline void hv_xl_restore_params(libxl_domain_restore_params *p, bool checkpointed)
{
    libxl_domain_restore_params_init(p);
    p->stream_version = 2;
    p->checkpointed_stream =
        checkpointed ? LIBXL_CHECKPOINTED_STREAM_REMUS : LIBXL_CHECKPOINTED_STREAM_NONE;
}

static inline int hv_xl_shutdown(libxl_ctx *ctx, uint32_t domid)
{
    return libxl_domain_shutdown(ctx, domid, NULL);
}

static inline int hv_xl_destroy(libxl_ctx *ctx, uint32_t domid)
{
    return libxl_domain_destroy(ctx, domid, NULL);
}

static inline int hv_xl_unpause(libxl_ctx *ctx, uint32_t domid)
{
    return libxl_domain_unpause(ctx, domid, NULL);
}

static inline int hv_xl_power_button(libxl_ctx *ctx, uint32_t domid)
{
    return libxl_send_trigger(ctx, domid, LIBXL_TRIGGER_POWER, 0, NULL);
}

static inline int hv_xl_retrieve_config(libxl_ctx *ctx, uint32_t domid, libxl_domain_config *c)
{
    return libxl_retrieve_domain_configuration(ctx, domid, c, NULL);
}

/* INVALID_DOMID is the int ~0; domids are uint32_t. */
#define HV_XL_NO_DOMID ((uint32_t)INVALID_DOMID)

/* The settings libxlutil parsed, as a list (the last in the file first). libxlutil has no
 * public call that lists them: xl asks only for the keys it knows, while vmha must refuse
 * every key it does not take however the file spells it, so it reads what libxlutil parsed
 * rather than scanning the text a second way. These are the leading fields of libxlutil's
 * private XLU_Config and XLU_ConfigSetting (libxlu_internal.h), the same from Xen 4.6, when
 * XLU_ConfigValue appeared, to today's tree; hv_libxl_cfg.c checks them against the public
 * calls before trusting them. */
struct hv_xlu_setting {
    struct hv_xlu_setting *next;
    char *name;
    XLU_ConfigValue *value;
};

static inline const struct hv_xlu_setting *hv_xlu_settings(const XLU_Config *cfg)
{
    return *(struct hv_xlu_setting *const *)cfg;
}
