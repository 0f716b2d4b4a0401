-- Client addresses refused at accept (`kefu-relay block`). Read by every
-- running relay twice a second, so a block takes effect without a restart.
CREATE TABLE blocks (
    -- An address range in CIDR form, as `10.0.0.0/8` or `2001:db8::1/128`.
    range       TEXT PRIMARY KEY,
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    -- NULL: until `kefu-relay unblock`.
    expires_at  BIGINT
);

-- The visitor's client address as agents see it (full, truncated to its
-- network, or not kept: the `visitor_address` setting).
ALTER TABLE visitors ADD COLUMN address TEXT;
