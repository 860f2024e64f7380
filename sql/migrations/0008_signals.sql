-- What approvers and treasurers see (API §10): the signals of a page of requests and the
-- filters of the queues and the audit log are answered by indexes, one statement a page.
--
-- name_key is the beneficiary's name as ACCOUNT_CHANGED compares it: spaces trimmed and
-- collapsed by the expression, case and accents ignored by the collation. It is stored so
-- that it can be indexed; nothing writes it.
ALTER TABLE payment_requests
  ADD COLUMN name_key VARCHAR(140) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci
    AS (REGEXP_REPLACE(TRIM(beneficiary_name), ' {2,}', ' ')) STORED;

-- DUPLICATE: same account, currency and amount, created within 90 days.
CREATE INDEX requests_duplicate
  ON payment_requests (org_id, beneficiary_account, currency, amount, created_at);
-- NEW_BENEFICIARY: has this account ever been PAID?
CREATE INDEX requests_account_status ON payment_requests (org_id, beneficiary_account, status);
-- ACCOUNT_CHANGED: PAID requests to the same name, another account.
CREATE INDEX requests_name_status
  ON payment_requests (org_id, name_key, status, beneficiary_account);

-- The audit log's filters: one object (its type and id), one actor.
CREATE INDEX audit_type_object ON audit_events (org_id, object_type, object_id, id);
CREATE INDEX audit_actor ON audit_events (org_id, actor_id, id);
