/* UEFI NVRAM as OVMF keeps it: a firmware volume holding a variable store (part of boot/).
 *
 * nvram_parse checks the firmware volume header (signature, GUID, length, block map,
 * header checksum), the variable store header (GUID, size, format, health) and every
 * variable record, and says precisely what is wrong with a malformed file. Each
 * variable's live value is the one firmware would use: the record in state ADDED, or,
 * if an update was cut short, the one still IN_DELETED_TRANSITION. Pure functions over a
 * buffer the caller owns. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmha/common.h"

/* Variable record states (bits are cleared as a record progresses). */
#define NVRAM_VAR_HEADER_VALID_ONLY 0x7f
#define NVRAM_VAR_ADDED 0x3f
#define NVRAM_VAR_IN_DELETED_TRANSITION 0xfe
#define NVRAM_VAR_DELETED 0xfd

/* The namespace of the boot variables (EFI_GLOBAL_VARIABLE). */
#define NVRAM_GLOBAL_GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c"

struct nvram_var {
    char name[128]; /* UTF-8 */
    char guid[37];
    uint32_t attributes;
    uint8_t state;
    bool live;           /* the value firmware sees */
    size_t offset;       /* of the record's header in the file */
    const uint8_t *data; /* into the parsed buffer */
    size_t data_size;
};

struct nvram {
    bool authenticated; /* authenticated-variable store (Secure Boot capable) */
    uint64_t fv_length;
    size_t store_offset, store_size, used; /* used: bytes of records in the store */
    size_t n;
    struct nvram_var *vars; /* every record, in file order */
};

int nvram_parse(const uint8_t *buf, size_t len, struct nvram *ret, struct vmha_err *err);
void nvram_clear(struct nvram *nv);
/* The live variable name in guid (NULL = the global namespace), or NULL. */
const struct nvram_var *nvram_get(const struct nvram *nv, const char *name, const char *guid);

/* BootOrder: -ENOENT when there is no live BootOrder, -EINVAL when it is malformed. */
int nvram_boot_order(const struct nvram *nv, uint16_t *ret, size_t max, size_t *n,
                     struct vmha_err *err);

#define NVRAM_LOAD_OPTION_ACTIVE 0x1
#define NVRAM_LOAD_OPTION_HIDDEN 0x8

/* A decoded Boot#### load option. */
struct nvram_load_option {
    uint32_t attributes;
    char description[256]; /* UTF-8 */
    char path[1024];       /* device path as text, e.g. PciRoot(0x0)/Pci(0x1,0x1)/Ata(...) */
    size_t optional_size;
};

int nvram_load_option_parse(const uint8_t *d, size_t len, struct nvram_load_option *ret,
                            struct vmha_err *err);
/* A device path as text, in the UEFI specification's notation for the common node types and
 * Path(type,subtype,hex) for the rest. */
int nvram_device_path_text(const uint8_t *d, size_t len, char *buf, size_t size,
                           struct vmha_err *err);

/* --- NVRAM generations in the state store (boot/nvram_store.c) ---
 * state_dir/<guest>/nvram/gen-NNNNNN.fd with gen-NNNNNN.meta beside it (written last: a
 * generation exists once its meta does). Numbers only grow; the last `keep` are kept. */

struct nvram_gen {
    unsigned long num;
    char digest[65]; /* SHA-256 of the file, hex */
    char host[64];
    char reason[16]; /* stop, migrate, periodic, import */
    long long time;  /* seconds since the epoch */
    size_t size;
};

/* SHA-256 of buf as 64 hex digits. */
void nvram_digest(const uint8_t *buf, size_t len, char out[65]);
/* The generations of the guest whose directory is gdir, oldest first. */
int nvgen_list(const char *gdir, struct nvram_gen **ret, size_t *n, struct vmha_err *err);
/* Stores buf as a new generation if it validates and differs from the newest. Content equal
 * to an older generation is refused (-ESTALE): storing it would roll the NVRAM back. *stored
 * says whether a generation was written (false: identical to the newest). */
int nvgen_store(const char *gdir, const uint8_t *buf, size_t len, const char *host,
                const char *reason, unsigned keep, const struct vmha_deadline *dl,
                struct nvram_gen *ret, bool *stored, struct vmha_err *err);
/* The newest generation whose file is intact and valid, read into *buf. When newer ones are
 * damaged, note says which were skipped and why. -ENOENT when there is none. */
int nvgen_newest_valid(const char *gdir, uint8_t **buf, size_t *len, struct nvram_gen *ret,
                       char *note, size_t note_size, struct vmha_err *err);
/* Reads one generation, checking its digest and validity. */
int nvgen_read(const char *gdir, const struct nvram_gen *g, uint8_t **buf, size_t *len,
               struct vmha_err *err);
/* Keeps a file that will not be used (stale or foreign) for forensics. */
int nvgen_keep_forensic(const char *gdir, const uint8_t *buf, size_t len, const char *host,
                        const char *why, struct vmha_err *err);
/* The generation the guest last booted with (0 = none recorded). */
int nvgen_booted(const char *gdir, unsigned long *num, struct vmha_err *err);
int nvgen_set_booted(const char *gdir, unsigned long num, const char *host, struct vmha_err *err);
/* Writes buf to path atomically (temp file beside it, fsync, rename, fsync dir), mode 0600. */
int nvram_write_file(const char *path, const uint8_t *buf, size_t len, struct vmha_err *err);
