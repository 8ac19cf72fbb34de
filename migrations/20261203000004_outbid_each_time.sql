-- A bidder is told each time they are outbid, not only the first time on an auction. The outbid
-- notification was keyed by (kind, auction, recipient) alone, so a bidder who came back after being
-- outbid and was outbid again heard nothing the second time: no feed entry, no event, no email.
-- Its subject is now the released hold. A hold is released exactly once, so a redelivered release
-- job still tells no one twice, and a bidder outbid several times before their hold's release ran
-- (the hold stays open while they bid again) hears once for that hold, with the money back.
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
        PERFORM record_notification('outbid', auction.id, hold.user_id, NULL, hold.id, '{}'::jsonb);
    END IF;
    RETURN 'released';
END $$;
