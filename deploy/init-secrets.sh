#!/bin/sh
# Writes the random secret files of one georep site; existing files are kept.
#
#   deploy/init-secrets.sh primary|secondary [DIR]      (DIR: default deploy/secrets)
#
# Random (48 hex characters): admin_token, postgres_password (and database_url
# with it), registry_http_secret, a NATS password per georep service
# (nats_<service>_password); on the primary also notification_secret and
# leafnode_password. A secondary needs copies of the primary's
# leafnode_password, key.pem and cert.pem: the script says what is missing.
# The directory is 0700 and its files 0644: the containers read them as
# other users (postgres, node), through their bind mounts only.
set -eu

role=${1:-}
dir=${2:-$(dirname "$0")/secrets}
case $role in
  primary | secondary) ;;
  *)
    echo "usage: $0 primary|secondary [DIR]" >&2
    exit 64
    ;;
esac

umask 077
mkdir -p "$dir"
chmod 700 "$dir"

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

put() {
  if [ -e "$dir/$1" ]; then
    echo "kept    $dir/$1"
  else
    printf '%s\n' "$2" >"$dir/$1"
    echo "wrote   $dir/$1"
  fi
  chmod 644 "$dir/$1"
}

put admin_token "$(random)"
put registry_http_secret "$(random)"
put postgres_password "$(random)"
put database_url "postgres://georep:$(cat "$dir/postgres_password")@postgres:5432/georep"
if [ "$role" = primary ]; then
  put notification_secret "$(random)"
  put leafnode_password "$(random)"
  nats_users="event_log ingest status"
else
  nats_users="dispatcher status transfer"
fi
# Each georep service connects to the site's NATS as its own user (deploy/<role>/nats.conf).
for user in $nats_users; do
  put "nats_${user}_password" "$(random)"
done

missing=0
for file in leafnode_password key.pem cert.pem token_users.json; do
  if [ -e "$dir/$file" ]; then
    chmod 644 "$dir/$file"
  else
    missing=1
    case $file in
      leafnode_password) echo "missing $dir/$file: copy the primary's" ;;
      key.pem | cert.pem) echo "missing $dir/$file: the signing key every site shares; once, for all sites: pnpm georep keys generate --out $dir (then copy key.pem and cert.pem to the other sites)" ;;
      token_users.json) echo "missing $dir/$file: the users of this site's /token endpoint (deploy/README.md, \"Registry users\")" ;;
    esac
  fi
done
exit "$missing"
