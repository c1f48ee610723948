-- The template catalogue, who owns which premium template, and rendered documents.
CREATE TABLE templates (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    premium    BOOLEAN NOT NULL,
    price      BIGINT NOT NULL CHECK (price >= 0),
    body       TEXT NOT NULL,
    sort_order INTEGER NOT NULL DEFAULT 0
);

INSERT INTO templates (id, name, premium, price, body, sort_order) VALUES
('classic', 'Classic', FALSE, 0,
'{{name}}
{{title}}
{{email}} | {{phone}}

{{summary}}

Experience
{{experience}}

Education
{{education}}
', 1),
('executive', 'Executive', TRUE, 50,
'{{name}}
{{title}}
{{email}} | {{phone}} | {{location}}

EXECUTIVE PROFILE
{{summary}}

KEY ACHIEVEMENTS
{{achievements}}

LEADERSHIP EXPERIENCE
{{experience}}

EDUCATION
{{education}}
', 2);

-- One row per purchase; the primary key makes "buy twice" a no-op (ON CONFLICT DO NOTHING).
CREATE TABLE template_ownership (
    user_id     TEXT NOT NULL REFERENCES users (id),
    template_id TEXT NOT NULL REFERENCES templates (id),
    acquired_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, template_id)
);

CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    template_id TEXT NOT NULL REFERENCES templates (id),
    content     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
-- Listing a user's documents newest first.
CREATE INDEX documents_user_created ON documents (user_id, created_at DESC, id DESC);
