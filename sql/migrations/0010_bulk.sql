-- Many at once (issue 27, API §11): an import adds up to 5,000 requests and a /decisions
-- call decides up to 200, each with its audit event as if it had been made alone. One CALL
-- audit_append per event would be a round trip per request, and three statements each on
-- the server (lock the head, insert, move the head); audit_append_many takes a chunk of
-- events in one CALL, locks the head once, links and inserts them in order, and moves the
-- head once.
--
-- The link's hash is now computed in one place, audit_link_hash, which both procedures call
-- (src/audit.c's link_hash computes the same when it verifies a chain: change both
-- together). audit_append is created again to use it, with the same parameters and effects.

CREATE FUNCTION audit_link_hash(p_org BIGINT, p_seq BIGINT, p_actor BIGINT, p_object BIGINT,
    p_prev CHAR(64) CHARACTER SET ascii, p_at VARCHAR(23), p_action VARCHAR(40),
    p_type VARCHAR(20), p_key VARCHAR(255), p_corr VARCHAR(128),
    p_data TEXT CHARACTER SET utf8mb4)
    RETURNS CHAR(64) CHARACTER SET ascii
  DETERMINISTIC
  NO SQL
  SQL SECURITY INVOKER
  RETURN SHA2(CONCAT(p_org, '|', p_seq, '|', p_actor, '|', p_object, '|',
    LENGTH(p_prev), ':', p_prev, '|',
    LENGTH(p_at), ':', p_at, '|',
    LENGTH(p_action), ':', p_action, '|',
    LENGTH(p_type), ':', p_type, '|',
    LENGTH(COALESCE(p_key, '')), ':', COALESCE(p_key, ''), '|',
    LENGTH(p_corr), ':', p_corr, '|',
    LENGTH(p_data), ':', p_data), 256);

DROP PROCEDURE audit_append;

CREATE PROCEDURE audit_append(IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_action VARCHAR(40), IN p_type VARCHAR(20), IN p_object BIGINT,
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_data TEXT CHARACTER SET utf8mb4)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_seq BIGINT;
    DECLARE v_prev, v_hash CHAR(64) CHARACTER SET ascii;
    SELECT seq + 1, hash INTO v_seq, v_prev FROM audit_heads WHERE org_id = p_org FOR UPDATE;
    SET v_hash = audit_link_hash(p_org, v_seq, p_actor, p_object, v_prev, p_at, p_action,
      p_type, p_key, p_corr, p_data);
    INSERT INTO audit_events (org_id, seq, at, actor_id, action, object_type, object_id,
      idempotency_key, correlation_id, data, hash, prev_hash)
      VALUES (p_org, v_seq, p_at, p_actor, p_action, p_type, p_object, p_key, p_corr, p_data,
      v_hash, v_prev);
    UPDATE audit_heads SET seq = v_seq, hash = v_hash WHERE org_id = p_org;
  END;

-- p_events is a JSON array of [action, objectType, objectId, data] (data: the event's JSON
-- object as a string), in chain order; every event shares the time, actor, key and
-- correlation id. SQL SECURITY INVOKER, as the others (0005).
CREATE PROCEDURE audit_append_many(IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_events LONGTEXT CHARACTER SET utf8mb4)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_done INT DEFAULT 0;
    DECLARE v_seq BIGINT;
    DECLARE v_prev, v_hash CHAR(64) CHARACTER SET ascii;
    DECLARE v_action VARCHAR(40) CHARACTER SET ascii;
    DECLARE v_type VARCHAR(20) CHARACTER SET ascii;
    DECLARE v_object BIGINT;
    DECLARE v_data TEXT CHARACTER SET utf8mb4;
    DECLARE events CURSOR FOR
      SELECT e.action, e.type, e.object, e.data
        FROM JSON_TABLE(p_events, '$[*]' COLUMNS (
          ord FOR ORDINALITY,
          action VARCHAR(40) CHARACTER SET ascii PATH '$[0]',
          type VARCHAR(20) CHARACTER SET ascii PATH '$[1]',
          object BIGINT PATH '$[2]',
          data TEXT CHARACTER SET utf8mb4 PATH '$[3]')) e
        ORDER BY e.ord;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
    SELECT seq, hash INTO v_seq, v_prev FROM audit_heads WHERE org_id = p_org FOR UPDATE;
    OPEN events;
    append: LOOP
      FETCH events INTO v_action, v_type, v_object, v_data;
      IF v_done THEN
        LEAVE append;
      END IF;
      SET v_seq = v_seq + 1;
      SET v_hash = audit_link_hash(p_org, v_seq, p_actor, v_object, v_prev, p_at, v_action,
        v_type, p_key, p_corr, v_data);
      INSERT INTO audit_events (org_id, seq, at, actor_id, action, object_type, object_id,
        idempotency_key, correlation_id, data, hash, prev_hash)
        VALUES (p_org, v_seq, p_at, p_actor, v_action, v_type, v_object, p_key, p_corr, v_data,
        v_hash, v_prev);
      SET v_prev = v_hash;
    END LOOP;
    CLOSE events;
    UPDATE audit_heads SET seq = v_seq, hash = v_prev WHERE org_id = p_org;
  END;

GRANT EXECUTE ON FUNCTION audit_link_hash TO remit_app;
GRANT EXECUTE ON PROCEDURE audit_append TO remit_app;
GRANT EXECUTE ON PROCEDURE audit_append_many TO remit_app;
