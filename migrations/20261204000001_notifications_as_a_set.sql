-- A release batch records its outbid notifications as a set. release_locked_holds
-- (20261203000005) called record_notification() once per released hold: a lookup of the bidder, the
-- notification, its email's outbox row, and the bump of the bidder's event counter with the event,
-- each a statement of its own. Profiled under the bids bench, that loop was half of a batch's time
-- (0.29 ms per outbid bidder, 4.6 ms for a batch of 11), and the batch keeps the auctions and
-- wallets it took locked until it commits, while bids on them wait.
--
-- record_outbid_notifications() makes a batch's outbid notifications in one statement each for the
-- rows, the emails and the events, as the loop made them: one per released hold of a live auction,
-- the bidder's email preference, and each bidder's events numbered 1, 2, 3… without gaps, in the
-- order of the notifications' ids. When an email falls due is now one function that it and
-- record_notification() both use, notification_email_due(). record_notification() keeps its own
-- statements for its one notification: through a set-based statement it took 0.9-1.2 ms instead of
-- 0.6-0.7 (pgbench, one client).
--
-- Also: a hold of a live auction that no hold leads (leader_hold_id NULL) is released. The rule's
-- "does not lead" was `NOT (live AND leader_hold_id = id)`, which is NULL there, so such a hold was
-- neither released nor answered (its delivery failed and was retried for ever). Bids always set a
-- leader, so only data written by hand reached it (the `jobs --outbid` bench's seed).

-- The holds of `p_hold_ids` that only a batch holding their auction and wallet can decide (as in
-- 20261203000005, with a leaderless live auction's holds among them).
CREATE OR REPLACE FUNCTION holds_to_decide(p_hold_ids BIGINT[]) RETURNS BIGINT[] LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(h.id), '{}') FROM holds h JOIN auctions a ON a.id = h.auction_id
            WHERE h.id = ANY(p_hold_ids) AND h.status = 'open'
              AND NOT (a.status IN ('scheduled', 'active', 'closed') AND a.leader_hold_id IS NOT DISTINCT FROM h.id));
END $$;

-- When the email of a new notification of `p_kind` to `p_recipient` falls due; NULL: never (the
-- rules of 20261127000001's record_notification, moved here unchanged). Outbid emails and message
-- digests can be turned off; a message's digest is due ten minutes later, and only the first unread
-- message of a conversation schedules one; questions answered are not emailed.
CREATE FUNCTION notification_email_due(p_kind TEXT, p_recipient users, p_conversation_id BIGINT)
RETURNS TIMESTAMPTZ LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN CASE
        WHEN p_kind = 'outbid' AND NOT p_recipient.email_outbid THEN NULL
        WHEN p_kind = 'message' AND (NOT p_recipient.email_messages OR EXISTS (
            SELECT 1 FROM notifications n WHERE n.kind = 'message' AND n.conversation_id = p_conversation_id
              AND n.recipient_id = p_recipient.id AND n.email_due_at IS NOT NULL
              AND n.sent_at IS NULL AND n.read_at IS NULL)) THEN NULL
        WHEN p_kind = 'message' THEN now() + interval '10 minutes'
        WHEN p_kind = 'question_answered' THEN NULL
        ELSE now() END;
END $$;

-- The `outbid` notifications of the released holds `p_released` whose auction is still live or
-- awaiting settlement, one per hold in hold order, as record_notification('outbid', …) once per
-- hold made them: the rows, each one's `notification` event on its bidder's stream, and its email as
-- the bidder's preferences say (notification_email_due). A hold already told about is not told
-- again.
CREATE FUNCTION record_outbid_notifications(p_released BIGINT[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    WITH made AS (
        INSERT INTO notifications (kind, auction_id, recipient_id, subject_id, data, email_due_at)
        SELECT 'outbid', h.auction_id, h.user_id, h.id, '{}', notification_email_due('outbid', u, NULL)
        FROM holds h JOIN auctions a ON a.id = h.auction_id JOIN users u ON u.id = h.user_id
        WHERE h.id = ANY(p_released) AND a.status IN ('scheduled', 'active', 'closed')
        ORDER BY h.id
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
        RETURNING *),
    emails AS (
        INSERT INTO outbox (kind, payload)
        SELECT 'send_email', jsonb_build_object('notification_id', m.id) FROM made m
        WHERE m.email_due_at <= now() ORDER BY m.id),
    told AS (
        SELECT m.*, row_number() OVER (PARTITION BY m.recipient_id ORDER BY m.id) AS nth,
               count(*) OVER (PARTITION BY m.recipient_id) AS of_recipient
        FROM made m),
    -- Each bidder's counter advances once, by their number of notifications, under their row lock.
    -- (The batch holds its bidders' wallets already, so no other batch takes these rows.)
    bumped AS (
        UPDATE users u SET event_seq = u.event_seq + t.of_recipient
        FROM (SELECT DISTINCT recipient_id, of_recipient FROM told) t
        WHERE u.id = t.recipient_id
        RETURNING u.id, u.event_seq - t.of_recipient AS seq_before)
    INSERT INTO user_events (user_id, seq, type, data)
    SELECT t.recipient_id, b.seq_before + t.nth, 'notification', jsonb_build_object(
        'id', t.id, 'kind', t.kind, 'auction_id', t.auction_id, 'conversation_id', t.conversation_id,
        'data', t.data, 'read_at', NULL, 'created_at', t.created_at)
    FROM told t JOIN bumped b ON b.id = t.recipient_id
    ORDER BY t.id;
END $$;

-- The one way a notification is made, as in 20261127000001, its email's due time from
-- notification_email_due().
CREATE OR REPLACE FUNCTION record_notification(p_kind TEXT, p_auction_id BIGINT, p_recipient_id BIGINT,
                                               p_conversation_id BIGINT, p_subject_id BIGINT, p_data JSONB)
RETURNS TABLE (user_id BIGINT, seq BIGINT, type TEXT, data JSONB, at TIMESTAMPTZ) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    recipient users%ROWTYPE;
    due TIMESTAMPTZ;
    made notifications%ROWTYPE;
BEGIN
    SELECT * INTO recipient FROM users WHERE id = p_recipient_id;
    due := notification_email_due(p_kind, recipient, p_conversation_id);
    INSERT INTO notifications (kind, auction_id, recipient_id, conversation_id, subject_id, data, email_due_at)
    VALUES (p_kind, p_auction_id, p_recipient_id, p_conversation_id, p_subject_id, p_data, due)
    ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
    RETURNING * INTO made;
    IF made.id IS NULL THEN
        RETURN;
    END IF;
    IF due <= now() THEN
        INSERT INTO outbox (kind, payload) VALUES ('send_email', jsonb_build_object('notification_id', made.id));
    END IF;
    RETURN QUERY SELECT * FROM append_user_event(p_recipient_id, 'notification', jsonb_build_object(
        'id', made.id, 'kind', made.kind, 'auction_id', made.auction_id, 'conversation_id', made.conversation_id,
        'data', made.data, 'read_at', NULL, 'created_at', made.created_at));
END $$;

-- As in 20261203000005, but the outbid notifications of the released holds of live auctions are
-- made together, in hold order, as the loop made them (and a leaderless live auction's holds are
-- released).
CREATE OR REPLACE FUNCTION release_locked_holds(p_hold_ids BIGINT[], p_auctions BIGINT[], p_bidders BIGINT[])
RETURNS TABLE (ordinal BIGINT, outcome TEXT) LANGUAGE plpgsql AS $$
DECLARE
    released BIGINT[];
BEGIN
    WITH releasable AS (
        SELECT h.id FROM holds h JOIN auctions a ON a.id = h.auction_id
        WHERE h.id = ANY(p_hold_ids) AND h.status = 'open'
          AND h.auction_id = ANY(p_auctions) AND h.user_id = ANY(p_bidders)
          AND NOT (a.status IN ('scheduled', 'active', 'closed') AND a.leader_hold_id IS NOT DISTINCT FROM h.id)),
    ended AS (
        UPDATE holds h SET status = 'released', ended_at = now()
        FROM releasable r WHERE h.id = r.id AND h.status = 'open'
        RETURNING h.id, h.user_id, h.auction_id, h.amount),
    credited AS (
        UPDATE accounts c SET balance = c.balance + CASE WHEN c.kind = 'available' THEN w.amount ELSE -w.amount END
        FROM (SELECT e.user_id, sum(e.amount)::bigint AS amount FROM ended e GROUP BY e.user_id) w
        WHERE c.user_id = w.user_id AND c.kind IN ('available', 'held')),
    lines AS (
        INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id)
        SELECT held.id, available.id, e.amount, 'release', e.id, e.auction_id
        FROM ended e
        JOIN accounts held ON held.user_id = e.user_id AND held.kind = 'held'
        JOIN accounts available ON available.user_id = e.user_id AND available.kind = 'available')
    SELECT coalesce(array_agg(e.id), '{}') INTO released FROM ended e;

    PERFORM record_outbid_notifications(released);

    -- The holds left open lead their auction (those this batch decided) or were not decidable here.
    RETURN QUERY
    SELECT asked.n, CASE
        WHEN h.id IS NULL THEN 'missing'
        WHEN h.id = ANY(released) AND asked.n = min(asked.n) OVER (PARTITION BY asked.id) THEN 'released'
        WHEN h.status <> 'open' THEN 'already_ended'
        WHEN a.status IN ('scheduled', 'active', 'closed') AND a.leader_hold_id = h.id THEN 'still_leading'
        ELSE 'busy' END
    FROM unnest(p_hold_ids) WITH ORDINALITY AS asked(id, n)
    LEFT JOIN holds h ON h.id = asked.id LEFT JOIN auctions a ON a.id = h.auction_id
    ORDER BY asked.n;
END $$;
