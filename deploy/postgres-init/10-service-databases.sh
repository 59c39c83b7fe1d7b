#!/usr/bin/env bash
# One database and one login role per service (docs/architecture.md §2: a service
# never reads another's tables), as `scripts/postgres ensure-service NAME` does
# for the local stack. The postgres image runs this once, on first start with an
# empty data volume; it is idempotent all the same.
#
#   ALUMNI_DATABASES       services to create, space-separated (default: membership consent mailer events analytics)
#   <NAME>_DB_PASSWORD     each role's password (default "<name>-dev", like the local stack)
#
# A shell wrapper around SQL rather than a .sql file, so that passwords come
# from the environment instead of being written into the repository.
# No `set -u`: if this file lost its exec bit the image would source it, and
# the image's own entrypoint does not expect nounset.
set -eo pipefail

for name in ${ALUMNI_DATABASES:-membership consent mailer events analytics}; do
  var="$(printf '%s' "$name" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
  pass="${!var:-$name-dev}"
  echo "alumni: role and database '$name'"

  psql -v ON_ERROR_STOP=1 -q --username "${POSTGRES_USER:-postgres}" --dbname postgres \
       -v name="$name" -v pass="$pass" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'pass')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
SQL

  # Only the owning role may connect or create objects in its database.
  psql -v ON_ERROR_STOP=1 -q --username "${POSTGRES_USER:-postgres}" --dbname "$name" \
       -v name="$name" <<'SQL'
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO :"name";
SQL
done
