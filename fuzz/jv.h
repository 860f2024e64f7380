/* Helpers the JSON fuzz targets share: a tree's text, and tree equality. */
#ifndef REMIT_FUZZ_JV_H
#define REMIT_FUZZ_JV_H
#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* v written by json_write_canonical (canonical) or json_write, through a generator with UTF-8
 * validation on (jw_new), so a string the parser let through invalid would break the text. */
const char *jv_text(struct arena *a, const struct jv *v, bool canonical, size_t *len);

/* Same type and value; numbers compare by literal text, strings and names bytewise (U+0000
 * included). Objects compare member by member in order when `ordered`, else as sets. */
bool jv_equal(const struct jv *x, const struct jv *y, bool ordered);

#endif
