-- A release batch decides and moves its holds as a set. release_holds and release_idle_holds
-- (20261202000001, 20261203000003) called release_hold() once per hold: a lookup, a lock of the
-- auction the batch already held, an update of the hold, and a transfer that updated both of the
-- bidder's accounts and inserted its ledger line, each a statement of its own. Profiled under the bids
-- bench, a batch took 7.8 ms, and kept the auctions and wallets it had taken locked all that time,
-- while bids on them waited. Now, once a batch holds its locks (taken exactly as before), one
-- statement ends every releasable hold, credits each bidder's wallet once with the sum of their
-- released holds, and writes one ledger line per hold; the outbid notifications follow, one per
-- released hold of a live auction, as before.
--
-- The rule is release_hold()'s, unchanged: a hold is released when it is open and does not lead
-- its auction while that auction is live or awaiting settlement. Outcomes are as before, one per
-- element of p_hold_ids: a hold given twice is 'released' for its first element and
-- 'already_ended' for the next; 'busy' when the caller did not get its auction or its bidder's
-- wallet. release_hold() is dropped: this is now the one place the rule lives.
--
-- A batch also no longer locks anything for the holds it can answer from a plain read: an ended
-- hold ('already_ended'; it never reopens) and a hold that leads its live auction again because its
-- bidder came back ('still_leading'; if it is outbid again, that bid records a release of its own).
-- Before, such a hold was 'busy' whenever a bid held its auction (a hot auction's always is), and
-- after four tries waited for the auction in release_holds, keeping it locked for the rest of that
-- batch while the auction's bids waited. (In one bids bench run, 3,850 of 23,764 release jobs found
-- nothing to release.)

-- The holds of `p_hold_ids` that only a batch holding their auction and wallet can decide: open,
-- and not leading their auction while it is live or awaiting settlement, at this moment. (PL/pgSQL,
-- which keeps the query's plan for the session, where a SQL function's would be planned every call.)
CREATE FUNCTION holds_to_decide(p_hold_ids BIGINT[]) RETURNS BIGINT[] LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(h.id), '{}') FROM holds h JOIN auctions a ON a.id = h.auction_id
            WHERE h.id = ANY(p_hold_ids) AND h.status = 'open'
              AND NOT (a.status IN ('scheduled', 'active', 'closed') AND a.leader_hold_id = h.id));
END $$;

-- Releases those of `p_hold_ids` whose auction is among `p_auctions` and whose bidder is among
-- `p_bidders`, both locked by the caller (auction rows, and both wallet accounts of each bidder).
CREATE FUNCTION release_locked_holds(p_hold_ids BIGINT[], p_auctions BIGINT[], p_bidders BIGINT[])
RETURNS TABLE (ordinal BIGINT, outcome TEXT) LANGUAGE plpgsql AS $$
DECLARE
    released BIGINT[];
    outbid RECORD;
BEGIN
    WITH releasable AS (
        SELECT h.id FROM holds h JOIN auctions a ON a.id = h.auction_id
        WHERE h.id = ANY(p_hold_ids) AND h.status = 'open'
          AND h.auction_id = ANY(p_auctions) AND h.user_id = ANY(p_bidders)
          AND NOT (a.status IN ('scheduled', 'active', 'closed') AND a.leader_hold_id = h.id)),
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

    FOR outbid IN SELECT h.id, h.user_id, h.auction_id FROM holds h JOIN auctions a ON a.id = h.auction_id
                  WHERE h.id = ANY(released) AND a.status IN ('scheduled', 'active', 'closed') ORDER BY h.id LOOP
        PERFORM record_notification('outbid', outbid.auction_id, outbid.user_id, NULL, outbid.id, '{}'::jsonb);
    END LOOP;

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

-- Waits for the auction and wallet of every hold to decide (auctions, then both accounts of every
-- bidder, by id: the order bids take them), then releases as a set.
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
    SELECT coalesce(array_agg(DISTINCT locked.user_id), '{}') INTO bidders_taken FROM (
        SELECT c.user_id FROM accounts c
        WHERE c.user_id IN (SELECT h.user_id FROM holds h WHERE h.id = ANY(deciding))
          AND c.kind IN ('available', 'held')
        ORDER BY c.id FOR UPDATE) locked;
    RETURN QUERY SELECT * FROM release_locked_holds(p_hold_ids, auctions_taken, bidders_taken);
END $$;

-- Takes only the auctions and wallets no other transaction holds (SKIP LOCKED, in the same
-- order), as 20261203000003 did, of the holds to decide; those of the others are answered 'busy',
-- undecided.
CREATE OR REPLACE FUNCTION release_idle_holds(p_hold_ids BIGINT[]) RETURNS TABLE (ordinal BIGINT, outcome TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    deciding BIGINT[] := holds_to_decide(p_hold_ids);
    idle_auctions BIGINT[];
    idle_wallets BIGINT[];
BEGIN
    SELECT coalesce(array_agg(locked.id), '{}') INTO idle_auctions FROM (
        SELECT a.id FROM auctions a
        WHERE a.id IN (SELECT h.auction_id FROM holds h WHERE h.id = ANY(deciding))
        ORDER BY a.id FOR UPDATE SKIP LOCKED) locked;
    SELECT coalesce(array_agg(wallet.user_id), '{}') INTO idle_wallets FROM (
        SELECT locked.user_id FROM (
            SELECT c.user_id FROM accounts c
            WHERE c.user_id IN (SELECT h.user_id FROM holds h
                                WHERE h.id = ANY(deciding) AND h.auction_id = ANY(idle_auctions))
              AND c.kind IN ('available', 'held')
            ORDER BY c.id FOR UPDATE SKIP LOCKED) locked
        GROUP BY locked.user_id HAVING count(*) = 2) wallet;
    RETURN QUERY SELECT * FROM release_locked_holds(p_hold_ids, idle_auctions, idle_wallets);
END $$;

DROP FUNCTION release_hold(BIGINT);
