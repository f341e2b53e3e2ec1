-- 005: a purchase whose entitlement an admin revoked (a refund, say) cannot be replayed.
ALTER TABLE purchases ADD COLUMN revoked_at TEXT;
