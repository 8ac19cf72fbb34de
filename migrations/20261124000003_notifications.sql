-- Emails to send: one row per (kind, auction, recipient), so each is sent at most once.
CREATE TABLE notifications (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('won', 'sold', 'outbid', 'unsold')),
    auction_id    BIGINT NOT NULL REFERENCES auctions (id),
    recipient_id  BIGINT NOT NULL REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A sender's lease: while it runs, no other delivery of the job sends this email.
    sending_until TIMESTAMPTZ,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       TIMESTAMPTZ,
    last_error    TEXT,
    CONSTRAINT notifications_once UNIQUE (kind, auction_id, recipient_id)
);
CREATE INDEX notifications_unsent_idx ON notifications (created_at) WHERE sent_at IS NULL;

-- The reconciliation sweep asks "is a release of this hold already on its way?".
CREATE INDEX outbox_release_hold_idx ON outbox (((payload ->> 'hold_id')::bigint)) WHERE kind = 'release_hold';
CREATE INDEX outbox_settle_auction_idx ON outbox (((payload ->> 'auction_id')::bigint)) WHERE kind = 'settle_auction';
CREATE INDEX outbox_send_email_idx ON outbox (((payload ->> 'notification_id')::bigint)) WHERE kind = 'send_email';
