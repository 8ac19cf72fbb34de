-- A release batch takes its bidders' user rows before their wallets, the order a settlement takes
-- them in. A release's outbid notifications advance each bidder's event counter, on their `users`
-- row (record_outbid_notifications), and a settlement locks its winners' and seller's rows, then
-- their accounts. A release batch took the accounts first, so it could hold a winner's wallet and
-- wait for their row while the settlement held that row and waited for the wallet: PostgreSQL
-- failed one of them as a deadlock after a second's wait, and its job was retried.
--
-- Now every transaction that takes both takes them auctions, then user rows, then accounts.
-- release_idle_holds skips a bidder whose row another transaction holds, as it skips a busy wallet
-- (their holds are 'busy', undecided); release_holds waits for them, in id order. Bids take no user
-- row for update, so they wait for nothing new. Otherwise both functions are as in 20261203000005.

CREATE OR REPLACE FUNCTION release_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    deciding BIGINT[] := holds_to_decide(p_hold_ids);
    auctions_taken BIGINT[];
    bidders_taken BIGINT[];
BEGIN
    SELECT coalesce(array_agg(locked.id), '{}') INTO auctions_taken FROM (
        SELECT a.id FROM auctions a
        WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(deciding))
        ORDER BY a.id FOR UPDATE) locked;
    SELECT coalesce(array_agg(locked.id), '{}') INTO bidders_taken FROM (
        SELECT u.id FROM users u
        WHERE u.id IN (SELECT h.user_id FROM holds h WHERE h.id = ANY(deciding))
        ORDER BY u.id FOR NO KEY UPDATE) locked;
    PERFORM FROM accounts c
    WHERE c.user_id = ANY(bidders_taken) AND c.kind IN ('available', 'held')
    ORDER BY c.id FOR UPDATE;
    RETURN QUERY SELECT * FROM release_locked_holds(p_hold_ids, auctions_taken, bidders_taken);
END $$;

CREATE OR REPLACE FUNCTION release_idle_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    deciding BIGINT[] := holds_to_decide(p_hold_ids);
    idle_auctions BIGINT[];
    idle_bidders BIGINT[];
    idle_wallets BIGINT[];
BEGIN
    SELECT coalesce(array_agg(locked.id), '{}') INTO idle_auctions FROM (
        SELECT a.id FROM auctions a
        WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(deciding))
        ORDER BY a.id FOR UPDATE SKIP LOCKED) locked;
    SELECT coalesce(array_agg(locked.id), '{}') INTO idle_bidders FROM (
        SELECT u.id FROM users u
        WHERE u.id IN (SELECT h.user_id FROM holds h
                       WHERE h.id = ANY(deciding) AND h.auction_id = ANY(idle_auctions))
        ORDER BY u.id FOR NO KEY UPDATE SKIP LOCKED) locked;
    SELECT coalesce(array_agg(wallet.user_id), '{}') INTO idle_wallets FROM (
        SELECT locked.user_id FROM (
            SELECT c.user_id FROM accounts c
            WHERE c.user_id = ANY(idle_bidders) AND c.kind IN ('available', 'held')
            ORDER BY c.id FOR UPDATE SKIP LOCKED) locked
        GROUP BY locked.user_id HAVING count(*) = 2) wallet;
    RETURN QUERY SELECT * FROM release_locked_holds(p_hold_ids, idle_auctions, idle_wallets);
END $$;
