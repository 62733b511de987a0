/* The guest's boot state: direct-kernel-boot artifacts and their digests, the install
 * state, UEFI NVRAM (nvram.h). All of it is kept in the state store (state.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmha/common.h"
#include "vmha/state.h"

/* --- Direct-kernel-boot artifacts (boot/artifacts.c) ---
 * The SHA-256 of the kernel and initrd a guest boots directly, and of its command line, are
 * recorded in state_dir/<guest>/artifacts (or come from parameters) and checked before every
 * start on every host. Without a cluster key the first start records them. With one, the
 * record carries an HMAC-SHA256 over the guest's name, the record's name, the format and the
 * values, so a writer to shared storage can neither swap a kernel and its digest together
 * nor copy another guest's record; and only an operator records (boot_artifacts_record, from
 * `vmha boot --record`): a start never signs whatever kernel it finds. */

struct boot_artifacts {
    const char *kernel, *initrd, *cmdline; /* NULL: not part of this boot */
};

/* The cluster key (artifact_key): wiped when cleared. */
struct boot_key {
    uint8_t *bytes; /* NULL: no key */
    size_t len;
};

/* The signed records' format: 2 binds guest and record name (1, before, did not). */
#define BOOT_RECORD_FORMAT 2

/* Reads the key file at path as vmha_secret_read does (include/vmha/common.h). */
int boot_key_load(const char *path, struct boot_key *ret, struct vmha_err *err);
void boot_key_clear(struct boot_key *k);

/* Which record: gdir/name ("artifacts", "install-artifacts") of guest, signed under key
 * (NULL or empty: unsigned records). */
struct boot_record_ref {
    const char *gdir, *guest, *name;
    const struct boot_key *key;
};

/* Without a key, a missing record is written by boot_artifacts_check (never with a key). */
#define BOOT_RECORD_IF_ABSENT 0x1u

/* SHA-256 of a file's contents as 64 hex digits. */
int boot_file_sha256(const char *path, char out[65], struct vmha_err *err);
/* Checks the artifacts against the record. Pinned digests (from parameters, NULL = none) are
 * checked first. -EBADMSG with the file and both digests in err on a mismatch; -EPERM when a
 * key is set and the record's HMAC does not verify (or it is unsigned, or of format 1);
 * -ENODATA when a key is set and there is no record. */
int boot_artifacts_check(const struct boot_record_ref *ref, const struct boot_artifacts *a,
                         const char *pinned_kernel, const char *pinned_initrd, unsigned flags,
                         struct vmha_err *err);
/* Measures the artifacts as they are on this host and replaces the record with them, signed
 * when a key is set: the operator's act, after checking the files. -EBADMSG when they differ
 * from a pinned digest; -ENOENT when the guest boots no kernel directly. */
int boot_artifacts_record(const struct boot_record_ref *ref, const struct boot_artifacts *a,
                          const char *pinned_kernel, const char *pinned_initrd,
                          struct vmha_err *err);

/* --- Install state (boot/artifacts.c): state_dir/<guest>/install --- */
enum install_state { INSTALL_NOT_STARTED, INSTALL_RUNNING, INSTALL_DONE };

struct install_record {
    enum install_state state;
    char host[64];     /* where the last install boot ran (or finished) */
    unsigned attempts; /* install boots so far */
    long long changed; /* seconds since the epoch */
};

const char *install_state_name(enum install_state s);
int install_read(const char *gdir, struct install_record *ret, struct vmha_err *err);
int install_write(const char *gdir, const struct install_record *r, struct vmha_err *err);
/* Checks only the files of the record `name` in gdir against this host's copies (paths as
 * recorded). 0 when they match or there is no record (*recorded false), -EBADMSG with the
 * reason when they differ. For status displays; starts use boot_artifacts_check. */
int boot_artifacts_verify_files(const char *gdir, const char *name, bool *recorded,
                                struct vmha_err *err);
