-- DUPLICATE without reading every twin (src/domain/signals.c): a request's signals name at
-- most ten twins, the lowest ids, but 0008's index kept the twins in created_at order, so
-- finding those ten meant joining all of them and ranking them. With thousands of twins (an
-- import of identical refunds, or a benchmark adding the same request again and again) every
-- add and every page paid for all of them: an add-request answered at a fifth of its rate.
-- This index keeps a request's twins in id order, with the 90-day window and the status
-- beside, so the ten lowest are the first ten entries that pass, read from the index alone.
ALTER TABLE payment_requests DROP INDEX requests_duplicate,
  ADD INDEX requests_duplicate (org_id, beneficiary_account, currency, amount, id, created_at,
    status);
