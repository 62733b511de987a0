/* Fuzzes the libxl backend's xl.cfg reader (hv/hv_libxl_cfg.c), pure like its libvirt
 * counterpart: the cluster's view of a config (hv_config_parse) and the
 * libxenlight domain configuration built from it for a start. Both run libxlutil's own parser
 * too, as xl does. Built only with the libxl backend. */
#include <stdlib.h>

#include "fuzz.h" /* tests/fuzz/ */
#include "hv_libxl_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct hv_guest_config c;
    struct vmha_err err = {0};
    static const struct hv_backend *b;
    if (!b && hv_backend_for_uri("libxl", &b, &err) < 0)
        abort();
    if (hv_config_parse(b, text, &c, &err) == 0)
        hv_guest_config_clear(&c);
    libxl_domain_config d;
    if (hv_libxl_domain_config(text, &d, &err) == 0)
        libxl_domain_config_dispose(&d);
    free(text);
    return 0;
}
