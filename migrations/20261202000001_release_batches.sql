-- Releasing holds in batches: one statement, one commit, for however many holds a worker has
-- waiting (shared/src/jobs/release_hold.rs gathers them). Each hold is still decided on its own by
-- release_hold(), so a batch changes nothing a single release would not: a hold repeated in a batch
-- (two deliveries of one job) is released by the first and found already ended by the second. The
-- answer is one row per element of p_hold_ids, by ordinal (1, 2, …).
--
-- Locks are taken in one global order before any row changes: every auction the holds belong to
-- (by id), then both accounts of every bidder concerned (by id). A bid locks its auction, then its
-- bidder's accounts, the same order, so a batch and a bid never wait on each other in a cycle, and
-- two batches that share a bidder queue up on the accounts instead of deadlocking.
CREATE FUNCTION release_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    each RECORD;
BEGIN
    PERFORM 1 FROM auctions a
    WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(p_hold_ids))
    ORDER BY a.id FOR UPDATE;
    PERFORM 1 FROM accounts c
    WHERE c.user_id IN (SELECT h.user_id FROM holds h WHERE h.id = ANY(p_hold_ids)) AND c.kind IN ('available', 'held')
    ORDER BY c.id FOR UPDATE;
    FOR each IN SELECT ids.id, ids.n FROM unnest(p_hold_ids) WITH ORDINALITY AS ids(id, n) ORDER BY ids.n LOOP
        ordinal := each.n;
        outcome := release_hold(each.id);
        RETURN NEXT;
    END LOOP;
END $$;
