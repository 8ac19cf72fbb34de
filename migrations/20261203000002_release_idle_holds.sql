-- Releasing a batch without waiting on bids. release_holds (20261202000001) locks every auction
-- of its batch, waiting for each bid in progress, and holds all of them until it commits: one busy
-- auction made the batch wait while bids on the other auctions of the batch waited for the batch
-- (measured: 37 ms per batch, bid p99 above 100 ms). release_idle_holds takes only the auctions no
-- one holds at that moment (SKIP LOCKED) and answers 'busy' for the holds of the others, without
-- deciding them; shared/src/jobs/release_hold.rs offers those again a moment later, and after a
-- few tries through release_holds, which waits. Locks are still taken in the order bids take them
-- (auctions, then both accounts of every bidder concerned, by id), so a batch and a bid cannot
-- deadlock; each hold is decided by release_hold() exactly as before.
CREATE FUNCTION release_idle_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    idle BIGINT[];
    each RECORD;
BEGIN
    SELECT coalesce(array_agg(locked.id), '{}') INTO idle FROM (
        SELECT a.id FROM auctions a
        WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(p_hold_ids))
        ORDER BY a.id FOR UPDATE SKIP LOCKED) locked;
    PERFORM 1 FROM accounts c
    WHERE c.user_id IN (SELECT h.user_id FROM holds h WHERE h.id = ANY(p_hold_ids) AND h.auction_id = ANY(idle))
      AND c.kind IN ('available', 'held')
    ORDER BY c.id FOR UPDATE;
    FOR each IN SELECT ids.id, ids.n, h.auction_id FROM unnest(p_hold_ids) WITH ORDINALITY AS ids(id, n)
                LEFT JOIN holds h ON h.id = ids.id ORDER BY ids.n LOOP
        ordinal := each.n;
        IF each.auction_id IS NULL OR each.auction_id = ANY(idle) THEN
            outcome := release_hold(each.id);
        ELSE
            outcome := 'busy';
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
