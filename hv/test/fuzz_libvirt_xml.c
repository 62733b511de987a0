/* Fuzzes the libvirt backend's XML handling (hv/hv_libvirt_xml.c), all of it pure: the guest's
 * domain XML as config_parse reads it (hv_config_parse), the one-off install
 * configuration laid over it, and the machine types read from a capabilities XML. The one-off
 * configuration of a domain XML that parses is what an install boot defines: it must parse
 * too (anything else aborts, as a finding). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h" /* tests/fuzz/ */
#include "hv_libvirt_private.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_libvirt_xml: %s\n", what);
    abort();
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct hv_guest_config c;
    struct vmha_err err = {0};
    static const struct hv_backend *b;
    if (!b && hv_backend_for_uri("qemu:///system", &b, &err) < 0)
        fail("no libvirt backend");
    bool parsed = hv_config_parse(b, text, &c, &err) == 0;
    if (parsed)
        hv_guest_config_clear(&c);

    static const struct hv_boot_override all = {
        .kernel = "/k", .initrd = "/i", .cmdline = "console=ttyS0", .media = "/install.iso"};
    static const struct hv_boot_override none = {0};
    const struct hv_boot_override *o = size % 2 ? &all : &none;
    char *oneoff = NULL;
    if (hv_oneoff_config(b, text, o, "c7a5fdbd-cdaf-9455-926a-d65c16db1809", &oneoff, &err) == 0) {
        if (parsed && hv_config_parse(b, oneoff, &c, &err) < 0)
            fail("the one-off configuration of a domain XML does not parse");
        if (parsed)
            hv_guest_config_clear(&c);
        free(oneoff);
    }

    char **machines = NULL;
    if (hv_libvirt_machines_from_caps(text, NULL, &machines, &err) == 0)
        free_strv(machines);
    free(text);
    return 0;
}
