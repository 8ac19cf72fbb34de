-- Release batches wait for no one. release_idle_holds (20261203000002) skipped the auctions a bid
-- held but then waited for the wallets (both accounts) of every bidder concerned, holding the
-- auctions and the wallets it had taken meanwhile; bids by those bidders waited for the batch in
-- turn, under their auction's row lock (measured on the spread bench: a bid's hold transfer waited
-- 2.6 ms on average, a batch 1.0 ms for wallets). Now the wallets are taken with SKIP LOCKED too, and
-- a hold is decided only when its auction and its bidder's two accounts were all taken here; the
-- others are answered 'busy', undecided, and offered again by shared/src/jobs/release_hold.rs as
-- before. A batch never waits, so it cannot deadlock, and it holds what it took only while it runs.
CREATE OR REPLACE FUNCTION release_idle_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    idle_auctions BIGINT[];
    idle_wallets BIGINT[];
    each RECORD;
BEGIN
    SELECT coalesce(array_agg(locked.id), '{}') INTO idle_auctions FROM (
        SELECT a.id FROM auctions a
        WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(p_hold_ids))
        ORDER BY a.id FOR UPDATE SKIP LOCKED) locked;
    SELECT coalesce(array_agg(wallet.user_id), '{}') INTO idle_wallets FROM (
        SELECT locked.user_id FROM (
            SELECT c.user_id FROM accounts c
            WHERE c.user_id IN (SELECT h.user_id FROM holds h
                                WHERE h.id = ANY(p_hold_ids) AND h.auction_id = ANY(idle_auctions))
              AND c.kind IN ('available', 'held')
            ORDER BY c.id FOR UPDATE SKIP LOCKED) locked
        GROUP BY locked.user_id HAVING count(*) = 2) wallet;
    FOR each IN SELECT ids.id, ids.n, h.auction_id, h.user_id FROM unnest(p_hold_ids) WITH ORDINALITY AS ids(id, n)
                LEFT JOIN holds h ON h.id = ids.id ORDER BY ids.n LOOP
        ordinal := each.n;
        IF each.auction_id IS NULL
           OR (each.auction_id = ANY(idle_auctions) AND each.user_id = ANY(idle_wallets)) THEN
            outcome := release_hold(each.id);
        ELSE
            outcome := 'busy';
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
