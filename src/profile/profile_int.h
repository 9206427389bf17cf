/*
 * profile_int.h - what the files of src/profile share beyond profile.h.
 */
#ifndef TD_PROFILE_PROFILE_INT_H
#define TD_PROFILE_PROFILE_INT_H

#include "base/buf.h"
#include "store/store.h"

/* Appends a stored value as JSON (a number that is not finite as null). */
void profile_put_value(struct td_buf *o, const struct store_value *v);

#endif
