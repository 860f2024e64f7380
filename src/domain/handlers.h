/* The handlers behind the route table (router.c), one file per resource. */
#ifndef REMIT_HANDLERS_H
#define REMIT_HANDLERS_H
#include "http.h"

int h_healthz(struct ctx *c);
int h_me(struct ctx *c);
int h_users_create(struct ctx *c);
int h_users_list(struct ctx *c);
int h_members_list(struct ctx *c);
int h_tokens_create(struct ctx *c);
int h_tokens_revoke(struct ctx *c);
int h_users_patch(struct ctx *c);
int h_me_tokens_create(struct ctx *c);
int h_me_tokens_list(struct ctx *c);
int h_invitations_create(struct ctx *c);
int h_invitations_accept(struct ctx *c);
int h_sessions_create(struct ctx *c);
int h_sessions_end(struct ctx *c);
int h_rules_get(struct ctx *c);
int h_rules_put(struct ctx *c);
int h_batches_create(struct ctx *c);
int h_batches_list(struct ctx *c);
int h_batches_get(struct ctx *c);
int h_batches_submit(struct ctx *c);
int h_batches_cancel(struct ctx *c);
int h_requests_create(struct ctx *c);
int h_requests_list(struct ctx *c);
int h_requests_import(struct ctx *c);
int h_requests_queue(struct ctx *c);
int h_requests_get(struct ctx *c);
int h_requests_patch(struct ctx *c);
int h_requests_delete(struct ctx *c);
int h_requests_approve(struct ctx *c);
int h_requests_reject(struct ctx *c);
int h_requests_mark_paid(struct ctx *c);
int h_approvals_list(struct ctx *c);
int h_decisions(struct ctx *c);
int h_ledger_entries(struct ctx *c);
int h_ledger_balances(struct ctx *c);
int h_audit_list(struct ctx *c);
int h_debtor_accounts_get(struct ctx *c);
int h_debtor_accounts_put(struct ctx *c);
int h_payment_files_create(struct ctx *c);
int h_payment_files_list(struct ctx *c);
int h_payment_files_get(struct ctx *c);
int h_payment_files_pain001(struct ctx *c);
int h_payment_files_csv(struct ctx *c);
int h_payment_files_confirm(struct ctx *c);
int h_payment_files_void(struct ctx *c);
int h_webhooks_create(struct ctx *c);
int h_webhooks_list(struct ctx *c);
int h_webhooks_get(struct ctx *c);
int h_webhooks_delete(struct ctx *c);
int h_webhooks_deliveries(struct ctx *c);
int h_status_reports_post(struct ctx *c);
int h_status_reports_list(struct ctx *c);
int h_status_reports_get(struct ctx *c);

#endif
