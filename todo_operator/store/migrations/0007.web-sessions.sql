-- The web page's sessions and the sign-ins under way (docs/WEB.md). Kept in
-- PostgreSQL, not in the cookie, so that signing out ends a session on every
-- replica at once, and a session id stolen after sign-out opens nothing. Only
-- the SHA-256 of an id or state is stored: a copy of the table signs no one in.
CREATE TABLE web_sessions (
    id_hash     bytea PRIMARY KEY,
    owner       text NOT NULL,
    is_admin    boolean NOT NULL,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);

CREATE TABLE web_sign_ins (
    state_hash    bytea PRIMARY KEY,
    code_verifier text NOT NULL,
    return_to     text NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_sign_ins_expires_at ON web_sign_ins (expires_at);
