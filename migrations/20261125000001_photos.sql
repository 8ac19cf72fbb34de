-- Item photos. The web stores the upload (`original_key`, private, never served) and records a
-- `process_photo` job; the images worker decodes it and writes two re-encoded renditions, or rejects
-- it with a reason. The worker's follow-up work is always derivable from a row: a photo still holding
-- `original_key` needs processing (or its original deleted), a photo with `removed_at` needs its
-- files purged and then the row deleted; one job, `process_photo`, does whichever is due.
CREATE TABLE photos (
    id             BIGSERIAL PRIMARY KEY,
    auction_id     BIGINT NOT NULL REFERENCES auctions (id),
    -- Display order within the auction: 0 is the cover.
    position       INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'rejected')),
    -- Why a photo was rejected: a snake_case code such as `corrupt_image`.
    reason         TEXT,
    original_key   TEXT,
    original_bytes BIGINT NOT NULL CHECK (original_bytes > 0),
    width          INTEGER,
    height         INTEGER,
    thumb_key      TEXT,
    large_key      TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at   TIMESTAMPTZ,
    -- Deleted by the seller: hidden at once; its `process_photo` job deletes the files, then the row.
    removed_at     TIMESTAMPTZ,
    CONSTRAINT photos_ready_has_renditions CHECK (
        (status = 'ready') = (thumb_key IS NOT NULL AND large_key IS NOT NULL AND width IS NOT NULL AND height IS NOT NULL)),
    CONSTRAINT photos_rejected_has_reason CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    CONSTRAINT photos_pending_has_original CHECK (status <> 'pending' OR original_key IS NOT NULL OR removed_at IS NOT NULL)
);
CREATE INDEX photos_auction_idx ON photos (auction_id, position, id) WHERE removed_at IS NULL;
-- The sweep looks for photos with work left.
CREATE INDEX photos_unfinished_idx ON photos (id) WHERE original_key IS NOT NULL OR removed_at IS NOT NULL;
