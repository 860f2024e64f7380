/* One JSON object per line on stderr, written with a single write(2). */
#ifndef REMIT_LOG_H
#define REMIT_LOG_H
#include <stddef.h>

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(int level);
int log_level_parse(const char *s);   /* "error".."debug" → level, else -1 */
int log_enabled(int level);

/* Writes {"ts":..,"level":..,"pid":..,"msg":"<msg>"[,<fields>]}. `fields_fmt` is a printf
 * format producing further members ("\"status\":%d"); strings that come from outside must be
 * escaped with log_escape first. NULL for none. */
void log_write(int level, const char *msg, const char *fields_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Escapes arbitrary bytes as the inside of a JSON string (bytes outside printable ASCII as
 * \u00XX), NUL-terminated, truncated to fit cap. */
void log_escape(char *out, size_t cap, const char *s, size_t len);

#endif
