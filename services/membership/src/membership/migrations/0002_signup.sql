-- Pre-alumni sign-up, applications under the eligibility policy, magic-link login, member history.

-- An associate (an approved applicant) is not in FS and has no student number.
ALTER TABLE members ALTER COLUMN student_number DROP NOT NULL;
ALTER TABLE members ADD CONSTRAINT members_status CHECK (status IN ('pre-alumni', 'alumni', 'associate'));
-- 'member' once she gave or changed her contact details herself: FS no longer overwrites them.
ALTER TABLE members ADD COLUMN contact_source text NOT NULL DEFAULT 'fs'
    CHECK (contact_source IN ('fs', 'member'));
CREATE INDEX members_email_lower ON members (lower(email));

-- What happened to a member and why: signed up, graduated, approved …
CREATE TABLE member_history (
    id              bigserial   PRIMARY KEY,
    member_id       uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    what            text        NOT NULL,
    detail          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    source_event_id text
);
CREATE INDEX member_history_member ON member_history (member_id, at);

-- A current student's sign-up, waiting for the click in the mail to her student address.
-- signup_id becomes the member_id, so the subject key of the mail carries over.
CREATE TABLE signups (
    signup_id      uuid        PRIMARY KEY,
    student_number text        NOT NULL,
    private_email  text        NOT NULL,
    given_name     text        NOT NULL,
    family_name    text        NOT NULL,
    language       text        NOT NULL CHECK (language IN ('nb', 'en')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    confirmed_at   timestamptz,
    -- Set when confirmed; erasing the member erases her sign-up.
    member_id      uuid        REFERENCES members ON DELETE CASCADE
);
CREATE INDEX signups_student_number ON signups (student_number, expires_at);
CREATE INDEX signups_unconfirmed ON signups (expires_at) WHERE confirmed_at IS NULL;  -- retention.py

-- Applications from people not in FS who may qualify under the eligibility policy.
CREATE TABLE applications (
    application_id   uuid        PRIMARY KEY,
    given_name       text        NOT NULL,
    family_name      text        NOT NULL,
    email            text        NOT NULL,
    language         text        NOT NULL CHECK (language IN ('nb', 'en')),
    category         text        NOT NULL,
    faculty          text        NOT NULL,
    justification    text        NOT NULL,
    -- The policy in force when she applied, and when it was decided.
    policy_version   text        NOT NULL,
    status           text        NOT NULL DEFAULT 'unverified'
        CHECK (status IN ('unverified', 'pending', 'approved', 'rejected')),
    applied_at       timestamptz NOT NULL DEFAULT now(),
    verify_expires_at timestamptz NOT NULL,
    verified_at      timestamptz,
    decided_at       timestamptz,
    decided_by       text,
    decided_role     text,
    decision_reason  text,
    decision_policy_version text,
    member_id        uuid        REFERENCES members ON DELETE CASCADE,
    CHECK ((status IN ('approved', 'rejected')) = (decided_at IS NOT NULL))
);
CREATE INDEX applications_queue ON applications (status, faculty, applied_at);
CREATE INDEX applications_email ON applications (lower(email), status);
CREATE INDEX applications_unverified ON applications (verify_expires_at) WHERE status = 'unverified';  -- retention.py
CREATE INDEX applications_rejected ON applications (decided_at) WHERE status = 'rejected';

-- Magic links issued: the nonce makes each one single use; kept as login history.
CREATE TABLE login_links (
    nonce      uuid        PRIMARY KEY,
    member_id  uuid        NOT NULL REFERENCES members ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX login_links_member ON login_links (member_id, issued_at);
