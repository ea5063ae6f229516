# Sourced once by the mysql image's entrypoint, on an empty data volume:
# one schema and one user per service, each user limited to its own schema
# (enough to run its migrations and its queries, nothing on the others).
#
# Reads OMS_USERS_DB_PASSWORD, OMS_PRODUCTS_DB_PASSWORD and
# OMS_ORDERS_DB_PASSWORD (deploy/secrets/mysql.env, made by
# scripts/compose-secrets); OMS_DB_PREFIX (default `oms_`) prefixes every
# schema and user name. Also run by scripts/compose-local against a local
# MariaDB, where `docker_process_sql` does not exist.

if ! declare -F docker_process_sql >/dev/null; then
  docker_process_sql() { mysql -uroot "$@"; }
fi

oms_db_prefix="${OMS_DB_PREFIX:-oms_}"
if ! [[ "$oms_db_prefix" =~ ^[a-z0-9_]+$ ]]; then
  echo "10-oms-schemas: OMS_DB_PREFIX must be lower-case letters, digits or _" >&2
  exit 1
fi

oms_create_schema() {
  local schema="$oms_db_prefix$1" user="$oms_db_prefix$2" password="$3"
  if ! [[ "$password" =~ ^[A-Za-z0-9]{16,}$ ]]; then
    echo "10-oms-schemas: the password of $user must be 16+ letters or digits" >&2
    exit 1
  fi
  docker_process_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`$schema\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$password';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES ON \`$schema\`.* TO '$user'@'%';
SQL
  echo "10-oms-schemas: schema $schema for user $user"
}

oms_create_schema users user_svc "${OMS_USERS_DB_PASSWORD:?set in deploy/secrets/mysql.env}"
oms_create_schema products product_svc "${OMS_PRODUCTS_DB_PASSWORD:?set in deploy/secrets/mysql.env}"
oms_create_schema orders order_svc "${OMS_ORDERS_DB_PASSWORD:?set in deploy/secrets/mysql.env}"
