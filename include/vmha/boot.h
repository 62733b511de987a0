/* The guest's boot state and the per-guest state store on shared storage.
 *
 * The store is a directory every node sees: state_dir/<guest>/ holds what must follow a
 * guest from host to host (its migration floor now; NVRAM generations and install state as
 * those land), state_dir/nodes/<node> what each node advertises. Files are small
 * "key=value" lines, readable by root only, and replaced atomically (temp file, fsync,
 * rename, fsync of the directory): a reader sees the old file or the new one, never half. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmha/common.h"

/* A parsed key=value file. */
struct store_kv {
    size_t n;
    char **keys, **values;
};

void store_kv_clear(struct store_kv *kv);
/* The value of key, or NULL. */
const char *store_kv_get(const struct store_kv *kv, const char *key);
/* Sets (replaces) key; values must not contain a newline (-EINVAL). */
int store_kv_set(struct store_kv *kv, const char *key, const char *value);
/* Parses text; rejects lines without '=' and keys that are not [a-z0-9_]+. */
int store_kv_parse(const char *text, struct store_kv *ret, struct vmha_err *err);

/* A guest name or node name usable as a file name: [A-Za-z0-9_.:-]+, not "." or "..". */
bool store_name_ok(const char *name);

/* Refuses (-EPERM, with the reason) a state_dir that belongs to others than root and this
 * user or that its group or others can write: whoever can write it could make root
 * overwrite files on every node. 0 when it does not exist yet (the store creates it 0700). */
int store_check_state_dir(const char *state_dir, struct vmha_err *err);
/* The guest's directory state_dir/<guest> (malloc'd), the way into every function below
 * that takes a directory: -EINVAL when guest is not store_name_ok, store_check_state_dir's
 * refusal, -ENAMETOOLONG when it does not fit a path. The symbolic links of state_dir itself
 * are resolved here, once: they are the administrator's; below it the store follows none. */
int store_guest_dir(const char *state_dir, const char *guest, char **ret, struct vmha_err *err);

/* The functions below take a directory and a record name (store_name_ok). They walk the
 * directory one component at a time, following no symbolic link (-ELOOP) and trusting no
 * directory owned or writable by others (-EPERM, sticky ones such as /tmp aside), and read
 * only regular files, refusing others (-EINVAL) without waiting on them. */

/* Reads dir/file; -ENOENT when it does not exist. */
int store_read(const char *dir, const char *file, struct store_kv *ret, struct vmha_err *err);
/* Replaces dir/file atomically (mode 0600), creating dir (0700) if needed. The temporary
 * file beside it is named after this host and a random number and created O_EXCL, so hosts
 * sharing the store never collide. With exclusive, fails with -EEXIST instead of replacing
 * an existing file. */
int store_write(const char *dir, const char *file, const struct store_kv *kv, bool exclusive,
                struct vmha_err *err);

/* An exclusive lock on dir (fcntl, so it holds across hosts on NFS), waited for until dl. */
int store_lock(const char *dir, const struct vmha_deadline *dl, int *fd_ret, struct vmha_err *err);
void store_unlock(int fd);

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
