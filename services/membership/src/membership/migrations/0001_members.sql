-- Members and their qualifying programmes. One member per student number.
CREATE TABLE members (
    member_id      uuid        PRIMARY KEY,
    student_number text        NOT NULL UNIQUE,
    given_name     text        NOT NULL,
    family_name    text        NOT NULL,
    email          text,
    phone          text,
    status         text        NOT NULL DEFAULT 'alumni',
    -- Optional fields that arrived invalid and were left out: [{field, reason, event_id}]
    field_defects  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE programmes (
    member_id       uuid    NOT NULL REFERENCES members ON DELETE CASCADE,
    programme_code  text    NOT NULL,
    degree_level    text    NOT NULL,
    programme_name  text,
    faculty         text    NOT NULL,
    campus          text,
    graduation_date date    NOT NULL,
    credits         numeric,
    source_event_id text    NOT NULL,
    PRIMARY KEY (member_id, programme_code, degree_level)
);

CREATE INDEX programmes_faculty_year ON programmes (faculty, graduation_date);
CREATE INDEX programmes_code ON programmes (programme_code);
