-- Saved session templates get an owner and a visibility (ARCHITECTURE.md, "Session templates").
-- Names are unique per owner, not per instance, so a taken name says nothing about anyone
-- else's templates. A template is private (its owner only), shared (its owner and the users in
-- template_shares) or instance (everyone; only an administrator sets it).
CREATE TABLE templates_owned (
    id          INTEGER PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    visibility  TEXT NOT NULL DEFAULT 'private'
                CHECK (visibility IN ('private', 'shared', 'instance')),
    body        TEXT NOT NULL,
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (owner_id, name)
);

-- Existing templates become private to the user who saved them (or, when that user is unknown,
-- to the first administrator, else the first user; a database without users has no one to give
-- them to, and no one who could have used them, so there they are dropped). Their texts were
-- minijinja templates with no parameters (saving never declared any), so what they meant is the
-- literal text: every `{` becomes `{{`, the escape of the plain `{name}` placeholder syntax.
INSERT INTO templates_owned
    (owner_id, name, description, visibility, body, created_by, created_at, updated_at)
SELECT owner, name, description, 'private', body, created_by, created_at, created_at
FROM (
    SELECT COALESCE(
               (SELECT id FROM users WHERE id = t.created_by),
               (SELECT id FROM users WHERE is_owner = 1 ORDER BY created_at, id LIMIT 1),
               (SELECT id FROM users ORDER BY created_at, id LIMIT 1)) AS owner,
           t.name, t.description, t.created_by, t.created_at,
           json_remove(json_set(t.body,
               '$.session_name', replace(json_extract(t.body, '$.session_name'), '{', '{{'),
               '$.session_description',
                   replace(COALESCE(json_extract(t.body, '$.session_description'), ''), '{', '{{'),
               '$.focus', replace(json_extract(t.body, '$.focus'), '{', '{{'),
               '$.pins', json((SELECT json_group_object(key, replace(value, '{', '{{'))
                               FROM json_each(t.body, '$.pins'))),
               '$.hypotheses', json((SELECT json_group_array(replace(value, '{', '{{'))
                                     FROM json_each(t.body, '$.hypotheses'))),
               '$.tasks', json((SELECT json_group_array(replace(value, '{', '{{'))
                                FROM json_each(t.body, '$.tasks')))),
               '$.built_in') AS body
    FROM session_templates t
)
WHERE owner IS NOT NULL;

DROP TABLE session_templates;
ALTER TABLE templates_owned RENAME TO session_templates;
CREATE INDEX session_templates_name ON session_templates(name, visibility);

-- The users a `shared` template is shared with.
CREATE TABLE template_shares (
    template_id INTEGER NOT NULL REFERENCES session_templates(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, user_id)
) WITHOUT ROWID;
CREATE INDEX template_shares_user ON template_shares(user_id, template_id);
