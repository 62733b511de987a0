/* The per-guest state store on shared storage, and the layout of its directory.
 *
 * The store is a directory every node sees: state_dir/<guest>/ holds what must follow a
 * guest from host to host (the records named below, NVRAM generations in nvram/). Files are small
 * "key=value" lines, readable by root only, and replaced atomically (temp file, fsync, rename,
 * fsync of the directory): a reader sees the old file or the new one, never half. Every caller asks
 * this module for the guest's directory (store_guest_dir) and names its records with the names
 * below; the digests the records carry are computed here too. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmha/common.h"

/* The records of state_dir/<guest>/. */
#define STATE_ARTIFACTS "artifacts" /* digests of the directly booted kernel, initrd, cmdline */
#define STATE_INSTALL "install"     /* the install's progress */
#define STATE_INSTALL_ARTIFACTS "install-artifacts" /* the install boot's kernel, initrd */
#define STATE_FLOOR "floor"                         /* the migration floor (migrate/) */
#define STATE_NVRAM_DIR "nvram"                     /* NVRAM generations (boot/nvram_store.c) */
/* Not in state_dir but in each node's own VMHA_LOCALDIR/<guest>/: this node's copy of a
 * replicated guest's disks holds a replica (a backup's), not the guest's own writes; only a
 * checkpoint may run from it (remus/receiver.c sets it, a promotion clears it). */
#define STATE_DISKS_REPLICA "disks-replica"

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

/* The directory-relative forms, for a caller that holds the directory open (NVRAM
 * generations). Opens dir one component at a time, from / (or the working directory), following no
 * symbolic link (-ELOOP) and refusing (-EPERM) a directory owned by others than root and this
 * user or writable by others (a sticky one such as /tmp aside). With create, missing
 * components are made (0700). -ENOENT when dir does not exist. */
int store_dir_open(const char *dir, bool create, int *ret, struct vmha_err *err);
/* store_read of file in the directory open on dfd (dir names it in messages). */
int store_read_at(int dfd, const char *dir, const char *file, struct store_kv *ret,
                  struct vmha_err *err);
/* Replaces file in the directory open on dfd with len bytes of data (temporary file, fsync,
 * rename, fsync of the directory), mode 0600; with exclusive, -EEXIST instead of replacing. */
int store_write_at(int dfd, const char *dir, const char *file, const void *data, size_t len,
                   bool exclusive, struct vmha_err *err);

/* SHA-256 of len bytes, as 64 lowercase hex digits. */
void state_sha256_hex(const void *data, size_t len, char out[65]);
/* HMAC-SHA256 of len bytes with key, as 64 lowercase hex digits. */
void state_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                           char out[65]);
