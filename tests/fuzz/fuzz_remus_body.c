/* Fuzzes a checkpoint's body (remus/image.c) as a backup handles one: remus_body_parse, and
 * for a body it accepts, what the backup does next with the bytes: the journal applied
 * (remus_journal_apply walks the sections again and writes the pages and the device state)
 * and the image a promotion restores built from them (remus_checkpoint_files, then the libvirt
 * backend's hv_ckpt_image: the save header, then QEMU's stream merged with the memory). Only bodies
 * of at most 1 MiB of memory go that far (the receiver takes only the guest's own size; a fuzzer
 * would spend its time writing sparse files). The backup has two small disks (64 KiB and
 * 4 KiB), so disk sections go as far as the disks' files. A device state delta is rebuilt
 * against a base of 16 KiB of zeroes. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "vmha/hv.h"
#include "vmha/remus.h"

#define APPLY_RAM_MAX (1u << 20)

static void disks_setup(const char *dir, struct remus_disks *ds)
{
    static const size_t sizes[] = {64 << 10, 4096};
    char spec[4400], name[16];
    struct vmha_err err = {0};
    fuzz_mkdir(dir);
    for (size_t i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "disk%zu", i);
        void *zero = calloc(1, sizes[i]);
        fuzz_write(dir, name, zero, sizes[i]);
        free(zero);
        snprintf(spec, sizeof(spec), "vd%c=%s/%s", (char)('a' + i), dir, name);
        if (remus_disks_add(ds, spec, &err) < 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct remus_disks disks;
    static char dir[4200];
    if (!dir[0]) {
        char ddir[4300];
        snprintf(ddir, sizeof(ddir), "%s/disks", fuzz_tmpdir());
        disks_setup(ddir, &disks);
        snprintf(dir, sizeof(dir), "%s/ckpt", fuzz_tmpdir());
        fuzz_mkdir(dir);
    }
    struct remus_body b;
    struct vmha_err err = {0};
    if (remus_body_parse(data, size, &disks, &b, &err) < 0 || b.ram_size > APPLY_RAM_MAX)
        return 0;
    if (b.dev_delta) { /* rebuilt against a device state of 16 KiB, as the receiver does */
        static unsigned char base[16 << 10];
        unsigned char *whole = NULL;
        size_t len = 0;
        if (remus_dev_delta_apply(b.dev, (size_t)b.dev_len, base, sizeof(base), &whole, &len,
                                  &err) == 0)
            free(whole);
    }
    /* A body that is not full applies over the memory before it: start from none. */
    fuzz_clear_dir(dir);
    if (remus_disks_save(dir, &disks, &err) < 0) {
        fprintf(stderr, "fuzz_remus_body: %s\n", err.msg);
        abort();
    }
    fuzz_write(dir, "ckpt.jrnl", data, size);
    if (remus_journal_apply(dir, &err) < 0)
        return 0;
    char dev[4300], ram[4300];
    int lock = remus_checkpoint_files(dir, dev, sizeof(dev), ram, sizeof(ram), &err);
    if (lock < 0)
        return 0;
    static FILE *out;
    static const struct hv_backend *be;
    if (!out && !(out = fopen("/dev/null", "we")))
        abort();
    if (!be && hv_backend_for_uri("qemu:///system", &be, &err) < 0)
        abort();
    uint8_t *d = NULL, *r = NULL;
    size_t dn = 0, rn = 0;
    if (vmha_read_blob(dev, 64u << 20, &d, &dn, &err) == 0 &&
        vmha_read_blob(ram, APPLY_RAM_MAX, &r, &rn, &err) == 0)
        hv_ckpt_image(be, d, dn, r, rn, out, &err);
    clearerr(out);
    free(d);
    free(r);
    close(lock);
    return 0;
}
