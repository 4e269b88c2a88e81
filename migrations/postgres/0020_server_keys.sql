-- The public signing keys of the servers that share this store (several servers on one
-- PostgreSQL each sign with their own key unless given one key file): each server records its
-- own at start, and each trusts the others' exports as its own. Public keys only; no secret
-- is ever stored here.
CREATE TABLE server_keys (
    public_key  text PRIMARY KEY,
    seen_at     text NOT NULL
);
