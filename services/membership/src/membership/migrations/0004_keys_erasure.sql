-- Crypto-shredding: one AES-256-GCM key per subject (a member, or a sign-up or
-- application that is not a member yet), wrapped with a key-encryption key from
-- the settings (kek_id names which), so a copy of this table alone opens nothing.
-- Erasure deletes a subject's rows; every sealed field about her becomes unreadable.
CREATE TABLE subject_keys (
    subject_id uuid        NOT NULL,
    version    integer     NOT NULL CHECK (version > 0),
    kek_id     text        NOT NULL,
    wrapped    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, version)
);

-- Who was erased and when (no personal data: the id is a random uuid). Keys are
-- never created again for these ids.
CREATE TABLE erased_subjects (
    subject_id   uuid        PRIMARY KEY,
    erased_at    timestamptz NOT NULL,
    requested_by text        NOT NULL CHECK (requested_by IN ('member', 'staff')),
    -- Staff erasures: who asked and why (accountability, GDPR art. 5(2)); kept here only.
    actor        text,
    reason       text
);

-- Replays of old `graduated` messages must not bring an erased member back.
-- The student number is kept only as an HMAC under a secret pepper, with the
-- degrees she had, so the same facts are recognised and a new degree is not.
CREATE TABLE erased_students (
    student_hash bytea       PRIMARY KEY,
    erased_at    timestamptz NOT NULL
);

CREATE TABLE erased_degrees (
    student_hash    bytea NOT NULL REFERENCES erased_students ON DELETE CASCADE,
    programme_code  text  NOT NULL,
    degree_level    text  NOT NULL,
    graduation_date date  NOT NULL,
    PRIMARY KEY (student_hash, programme_code, degree_level, graduation_date)
);
