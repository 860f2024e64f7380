-- Issue 22, item 4: the rule "requests are added to a batch only in the statuses the lifecycle
-- table allows (BA_EDIT)" has one home, src/domain/lifecycle.c. request_add no longer names a
-- status: the caller hands it the names of the statuses BA_EDIT is allowed from
-- (batch_statuses_for, a FIND_IN_SET list such as 'DRAFT'), and the procedure adds only to a
-- batch in one of them. Otherwise as in 0005: found in the caller's organisation without a
-- lock (tenancy before locks: src/domain/lock.h), then locked and its version bumped when it
-- has room; the request inserted (its maker and the batch's count by 0005's triggers) and read
-- back with the columns of REQUEST_COLS (src/domain/repr.h), in that order (script/check-lists
-- compares them). No result: nothing was added, and the caller's locking path tells why.
DROP PROCEDURE request_add;
CREATE PROCEDURE request_add(IN p_org BIGINT, IN p_batch BIGINT,
    IN p_statuses VARCHAR(255) CHARACTER SET ascii, IN p_max INT,
    IN p_amount BIGINT, IN p_currency CHAR(3) CHARACTER SET ascii,
    IN p_name VARCHAR(140) CHARACTER SET utf8mb4, IN p_account VARCHAR(34) CHARACTER SET utf8mb4,
    IN p_purpose VARCHAR(140) CHARACTER SET utf8mb4, IN p_user BIGINT)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    -- A SELECT of its own: a subquery in IF would read with a shared lock (InnoDB locks what
    -- a statement other than SELECT reads) and wait for another organisation's locked batch.
    DECLARE v_found INT;
    SELECT COUNT(*) INTO v_found FROM batches WHERE id = p_batch AND org_id = p_org;
    IF v_found = 1 THEN
      UPDATE batches SET version = version + 1, updated_at = NOW(3)
        WHERE id = p_batch AND FIND_IN_SET(status, p_statuses) > 0 AND request_count < p_max;
      IF ROW_COUNT() = 1 THEN
        INSERT INTO payment_requests (org_id, batch_id, amount, currency, beneficiary_name,
          beneficiary_account, purpose, created_by)
          VALUES (p_org, p_batch, p_amount, p_currency, p_name, p_account, p_purpose, p_user);
        SELECT r.id, r.batch_id, r.status, r.amount, r.currency, r.beneficiary_name,
          r.beneficiary_account, r.purpose, r.created_by, r.created_at, r.updated_at, r.version,
          r.required_approvals, r.approval_count, r.snapshot, r.paid_at, r.paid_by,
          r.payment_reference, cu.minor_unit
          FROM payment_requests r JOIN currencies cu ON cu.code = r.currency
          WHERE r.id = LAST_INSERT_ID();
      END IF;
    END IF;
  END;

-- A DROP takes the procedure's grants with it.
GRANT EXECUTE ON PROCEDURE request_add TO remit_app;
