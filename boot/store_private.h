/* The state store's directory-relative functions, shared by the files of boot/ (store.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vmha/boot.h"

/* Opens dir one component at a time, from / (or the working directory), following no
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
