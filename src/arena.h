/* Per-request bump allocator: everything a request allocates is freed at once when it ends. */
#ifndef REMIT_ARENA_H
#define REMIT_ARENA_H
#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
	size_t total;     /* bytes handed out since the last reset */
};

void *arena_alloc(struct arena *a, size_t n);          /* aborts on OOM; 16-byte aligned */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_reset(struct arena *a);                      /* keeps the first block for reuse */
void arena_free(struct arena *a);

#endif
