-- Neighbours talking: 1:1 conversations about an auction, public questions, reviews, blocks, the
-- notification feed, and each user's own gap-free event stream (/ws/me).

-- Each user's own events, `seq` = 1, 2, 3, … per user without gaps: `users.event_seq` is advanced
-- under the user's row lock in the transaction that causes the events (shared/src/events.rs).
ALTER TABLE users
    ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0,
    -- Email preferences (PATCH /api/v1/me): outbid emails, and digests of unread messages.
    ADD COLUMN email_outbid BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN email_messages BOOLEAN NOT NULL DEFAULT true;

CREATE TABLE user_events (
    user_id BIGINT NOT NULL REFERENCES users (id),
    seq     BIGINT NOT NULL,
    type    TEXT NOT NULL,
    data    JSONB NOT NULL,
    at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, seq)
);

-- A buyer's conversation with the seller about one auction; each party's read mark is the id of
-- the last message they have read.
CREATE TABLE conversations (
    id                BIGSERIAL PRIMARY KEY,
    auction_id        BIGINT NOT NULL REFERENCES auctions (id),
    buyer_id          BIGINT NOT NULL REFERENCES users (id),
    seller_id         BIGINT NOT NULL REFERENCES users (id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_activity_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    buyer_read_up_to  BIGINT NOT NULL DEFAULT 0,
    seller_read_up_to BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT conversations_one_per_buyer UNIQUE (auction_id, buyer_id),
    CONSTRAINT conversations_two_parties CHECK (buyer_id <> seller_id)
);
CREATE INDEX conversations_buyer_idx ON conversations (buyer_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_seller_idx ON conversations (seller_id, last_activity_at DESC, id DESC);

CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    -- NULL: written by the platform (the settlement's "who won at what price").
    sender_id       BIGINT REFERENCES users (id),
    body            TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 2000),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id DESC);

CREATE TABLE questions (
    id          BIGSERIAL PRIMARY KEY,
    auction_id  BIGINT NOT NULL REFERENCES auctions (id),
    asker_id    BIGINT NOT NULL REFERENCES users (id),
    body        TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
    answer      TEXT CHECK (char_length(answer) BETWEEN 1 AND 1000),
    answered_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT questions_answered_together CHECK ((answer IS NULL) = (answered_at IS NULL))
);
CREATE INDEX questions_auction_idx ON questions (auction_id, id DESC);

-- After settlement the winner reviews the seller and the seller the winner, once each.
CREATE TABLE reviews (
    id          BIGSERIAL PRIMARY KEY,
    auction_id  BIGINT NOT NULL REFERENCES auctions (id),
    reviewer_id BIGINT NOT NULL REFERENCES users (id),
    reviewee_id BIGINT NOT NULL REFERENCES users (id),
    rating      SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        TEXT NOT NULL CHECK (char_length(body) <= 2000),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reviews_once UNIQUE (auction_id, reviewer_id)
);
CREATE INDEX reviews_reviewee_idx ON reviews (reviewee_id, id DESC);

-- Auctions show their seller's rating (one more index lookup per row; lists stay one statement).
CREATE OR REPLACE VIEW auction_views AS
SELECT a.id, a.title, a.description, a.seller_id, s.username AS seller_username,
       a.category_id, c.slug AS category_slug, c.name AS category_name,
       a.region_id, r.name AS region_name, r.path AS region_path, a.national, a.condition, a.shipping_payer,
       a.status, a.start_price, a.current_price, a.buy_now_price, a.reserve_price, a.bid_increment, a.bid_count,
       a.leader_id, a.winner_id, a.watchers_count, a.starts_at, a.ends_at, a.soft_close_seconds, a.seq,
       a.created_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'position', p.position,
                'width', p.width, 'height', p.height, 'thumb_key', p.thumb_key,
                'large_key', p.large_key, 'created_at', p.created_at) ORDER BY p.position, p.id), '[]')
        FROM photos p WHERE p.auction_id = a.id AND p.status = 'ready' AND p.removed_at IS NULL) AS photos,
       seller_rating.average AS seller_rating_average, seller_rating.count AS seller_rating_count
FROM auctions a
JOIN users s ON s.id = a.seller_id
JOIN categories c ON c.id = a.category_id
JOIN regions r ON r.id = a.region_id
LEFT JOIN LATERAL (SELECT avg(rv.rating)::float8 AS average, count(*) AS count
                   FROM reviews rv WHERE rv.reviewee_id = a.seller_id) seller_rating ON true;

-- `blocker_id` refuses conversations opened by `blocked_id`.
CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL REFERENCES users (id),
    blocked_id BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

-- The notification feed is the notifications table: every kind, read marks, and what the feed
-- shows (`data`). A notification is emailed when `email_due_at` passes (NULL: never, the
-- recipient turned that email off); a message's notification is the conversation's digest, due ten
-- minutes later and sent only while the message is still unread. One notification per message or
-- question (`subject_id`), and still one per auction-level kind and recipient.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check
        CHECK (kind IN ('won', 'sold', 'outbid', 'unsold', 'message', 'question_answered')),
    ADD COLUMN conversation_id BIGINT REFERENCES conversations (id),
    ADD COLUMN subject_id BIGINT,
    ADD COLUMN data JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN read_at TIMESTAMPTZ,
    ADD COLUMN email_due_at TIMESTAMPTZ DEFAULT now();
UPDATE notifications SET email_due_at = created_at;
ALTER TABLE notifications
    DROP CONSTRAINT notifications_once,
    ADD CONSTRAINT notifications_once UNIQUE NULLS NOT DISTINCT (kind, auction_id, recipient_id, subject_id);
CREATE INDEX notifications_feed_idx ON notifications (recipient_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (recipient_id) WHERE read_at IS NULL;
DROP INDEX notifications_unsent_idx;
CREATE INDEX notifications_unsent_idx ON notifications (email_due_at) WHERE sent_at IS NULL AND email_due_at IS NOT NULL;

-- Appends an event to a user's own stream, advancing their gap-free `seq` under their row lock.
CREATE FUNCTION append_user_event(p_user_id BIGINT, p_type TEXT, p_data JSONB)
RETURNS TABLE (user_id BIGINT, seq BIGINT, type TEXT, data JSONB, at TIMESTAMPTZ) LANGUAGE sql AS $$
    WITH bumped AS (UPDATE users SET event_seq = event_seq + 1 WHERE id = p_user_id RETURNING event_seq)
    INSERT INTO user_events (user_id, seq, type, data)
    SELECT p_user_id, bumped.event_seq, p_type, p_data FROM bumped
    RETURNING user_id, seq, type, data, at
$$;

-- The one way a notification is made: the feed row, its `notification` event on the recipient's
-- stream, and its email as the recipient's preferences say. Outbid emails and message digests can
-- be turned off; a message's digest is due ten minutes later, and only the first unread message of
-- a conversation schedules one (the sweep records it when due; the sender skips it if read by
-- then); questions answered are not emailed. Returns the `notification` event, for publishing once
-- committed, or nothing when that notification exists already.
CREATE FUNCTION record_notification(p_kind TEXT, p_auction_id BIGINT, p_recipient_id BIGINT,
                                    p_conversation_id BIGINT, p_subject_id BIGINT, p_data JSONB)
RETURNS TABLE (user_id BIGINT, seq BIGINT, type TEXT, data JSONB, at TIMESTAMPTZ) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    recipient users%ROWTYPE;
    due TIMESTAMPTZ;
    made notifications%ROWTYPE;
BEGIN
    SELECT * INTO recipient FROM users WHERE id = p_recipient_id;
    due := CASE
        WHEN p_kind = 'outbid' AND NOT recipient.email_outbid THEN NULL
        WHEN p_kind = 'message' AND (NOT recipient.email_messages OR EXISTS (
            SELECT 1 FROM notifications n WHERE n.kind = 'message' AND n.conversation_id = p_conversation_id
              AND n.recipient_id = p_recipient_id AND n.email_due_at IS NOT NULL
              AND n.sent_at IS NULL AND n.read_at IS NULL)) THEN NULL
        WHEN p_kind = 'message' THEN now() + interval '10 minutes'
        WHEN p_kind = 'question_answered' THEN NULL
        ELSE now() END;
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

-- release_hold as before, its outbid notification made by record_notification.
CREATE OR REPLACE FUNCTION release_hold(p_hold_id BIGINT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    auction RECORD;
    hold holds%ROWTYPE;
BEGIN
    SELECT a.id, a.leader_hold_id, a.status IN ('scheduled', 'active', 'closed') AS running INTO auction
    FROM auctions a WHERE a.id = (SELECT h.auction_id FROM holds h WHERE h.id = p_hold_id) FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF auction.running AND auction.leader_hold_id = p_hold_id THEN
        RETURN 'still_leading';
    END IF;
    UPDATE holds h SET status = 'released', ended_at = now() WHERE h.id = p_hold_id AND h.status = 'open'
    RETURNING * INTO hold;
    IF NOT FOUND THEN
        RETURN 'already_ended';
    END IF;
    PERFORM ledger_transfer(
        (SELECT id FROM accounts WHERE user_id = hold.user_id AND kind = 'held'),
        (SELECT id FROM accounts WHERE user_id = hold.user_id AND kind = 'available'),
        hold.amount, 'release', hold.id, hold.auction_id, NULL);
    IF auction.running THEN
        PERFORM record_notification('outbid', auction.id, hold.user_id, NULL, NULL, '{}'::jsonb);
    END IF;
    RETURN 'released';
END $$;
