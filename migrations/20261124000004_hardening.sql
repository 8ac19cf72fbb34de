-- Releases and captures must never fail for a ceiling: a bidder who tops their wallet up to the
-- limit could otherwise block the release of their outbid hold, and with it the settlement that
-- pays the seller. The per-user ceiling is now checked on deposits only (available + held, under the
-- accounts' row locks); what bounds every balance is the total money in the wallet, kept by the
-- external account's floor: no sum of balances can reach 2^63.
ALTER TABLE accounts DROP CONSTRAINT accounts_balance_limit;
ALTER TABLE accounts ADD CONSTRAINT accounts_external_floor
    CHECK (kind <> 'external' OR balance >= -1000000000000000000);

-- Title search (`q`) is a substring match; trigram indexes serve ILIKE '%…%' without a scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX auctions_title_trgm_idx ON auctions USING gin (title gin_trgm_ops);

-- The retention sweep deletes by age.
CREATE INDEX outbox_relayed_idx ON outbox (relayed_at) WHERE relayed_at IS NOT NULL;
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX notifications_sent_idx ON notifications (sent_at) WHERE sent_at IS NOT NULL;
-- The per-seller cap on open auctions counts them.
CREATE INDEX auctions_open_by_seller_idx ON auctions (seller_id) WHERE status IN ('scheduled', 'active');
