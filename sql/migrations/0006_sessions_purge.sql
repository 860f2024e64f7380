-- Expired sign-in sessions are deleted by the pool's periodic purge, so the tokens table
-- grows with the people signed in, not with every sign-in ever made. The pool's role may
-- not DELETE from tokens (an API token's row is the record of a credential, revoked but
-- kept); this procedure runs with its definer's rights and deletes only sessions that
-- expired more than a day ago, 1,000 per call, oldest first. Answers with the count.
CREATE INDEX tokens_session_expiry ON tokens (kind, expires_at);

CREATE PROCEDURE sessions_purge_expired()
  SQL SECURITY DEFINER
  MODIFIES SQL DATA
  BEGIN
    DELETE FROM tokens WHERE kind = 'session' AND expires_at < NOW(3) - INTERVAL 1 DAY
      ORDER BY expires_at LIMIT 1000;
    SELECT ROW_COUNT();
  END;

GRANT EXECUTE ON PROCEDURE sessions_purge_expired TO remit_app;
