-- Many at once (issue 27, API §11): an import adds up to 5,000 requests and a /decisions
-- call decides up to 200, each with its audit event as if it had been made alone. Sending
-- the events one CALL audit_append each would be one round trip per request; this takes a
-- chunk of them in one CALL and appends them in order, each through audit_append itself, so
-- that the chain's hash is computed in one place in SQL (and src/audit.c's link_hash checks
-- it). p_events is a JSON array of [action, objectType, objectId, data] (data: the event's
-- JSON object as a string); every event shares the time, actor, key and correlation id.
CREATE PROCEDURE audit_append_many(IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_events LONGTEXT CHARACTER SET utf8mb4)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_done INT DEFAULT 0;
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
    OPEN events;
    append: LOOP
      FETCH events INTO v_action, v_type, v_object, v_data;
      IF v_done THEN
        LEAVE append;
      END IF;
      CALL audit_append(p_org, p_actor, p_at, v_action, v_type, v_object, p_key, p_corr, v_data);
    END LOOP;
    CLOSE events;
  END;

GRANT EXECUTE ON PROCEDURE audit_append_many TO remit_app;
