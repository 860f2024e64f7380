/* Load shedding: a request that waited too long before a worker picked it up is answered
 * 503 at once, without touching the database (README.md, "Under a burst"). */
#ifndef REMIT_SHED_H
#define REMIT_SHED_H

#include "http.h"

struct FCGX_Request;

/* How long the request waited between nginx handing it over (the REMIT_START param nginx
 * sets to $msec) and now, in milliseconds; -1 when nginx sent no usable start time. */
long shed_waited_ms(struct FCGX_Request *fr);

/* STEP_GO_ON when the request is to be served; else it has been answered 503 SERVICE_UNAVAILABLE
 * with Retry-After, because it waited so long that, served now, it would not be answered
 * within the config's shed_after_ms, and the status is returned. */
int shed_check_or_reply(struct ctx *c, struct FCGX_Request *fr);

/* Tells the shedder how long a request it admitted took, start to answer, in milliseconds. */
void shed_note_served(const struct config *cfg, double ms);

#endif
