/* What the files of cluster/ share. */
#pragma once

#include <libxml/tree.h>

#include "vmha/common.h"

/* The whole CIB from the local CIB manager, giving up at dl; the caller frees it. */
int cluster_query_cib(const struct vmha_deadline *dl, xmlNode **ret, struct vmha_err *err);
