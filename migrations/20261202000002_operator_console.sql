-- The operator console (/ops): the last ledger audit, kept so that the console can show it without
-- re-running it on every refresh, and an index for "recently ended auctions".

-- One row: the last audit's report (AuditReport as JSON), written by every audit (the CLI's and
-- GET /api/v1/admin/audit). A report that is older than the stored one never replaces it.
CREATE TABLE last_ledger_audit (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    checked_at  TIMESTAMPTZ NOT NULL,
    ok          BOOLEAN NOT NULL,
    report      JSONB NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX auctions_ended_at_idx ON auctions (ended_at DESC, id DESC) WHERE ended_at IS NOT NULL;
