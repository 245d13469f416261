#!/usr/bin/env bash
# Install the runtime packages of one dbstash image on Debian 12 (bookworm): the dump and restore
# clients of ENGINE at major VERSION, plus CA certificates, time zone data and libssl3.
#
#   install-clients.sh ENGINE [VERSION]      ENGINE: pg mysql mariadb mongo redis sqlite all
#   DRY_RUN=1 install-clients.sh pg 16       print the apt repositories and packages, change nothing
#   CLIENTS_FROM=debian install-clients.sh all
#                                            Debian's own packages only, no third-party repository
#                                            (for machines that reach Debian's mirror and nothing
#                                            else): PostgreSQL 15, MariaDB 10.11, Redis 7, SQLite 3;
#                                            no MongoDB tools (Debian has none) and no Oracle MySQL
#
# docker/images.yaml lists the same repositories and packages for every tag; tests/packaging.rs
# checks that the two agree, so change them together.
#
# Third-party repositories are added with their signing key in /etc/apt/keyrings and `signed-by`
# (ASCII-armoured keys keep the `.asc` name, which apt reads without gnupg). curl is only needed
# while installing and is purged again: the images carry no curl (the health check is
# `dbstash health`).
set -euo pipefail

engine=${1:-}
version=${2:-}
codename=bookworm
clients_from=${CLIENTS_FROM:-vendor}

die() {
  printf 'install-clients.sh: %s\n' "$*" >&2
  exit 2
}

repos=()    # name|key URL|key file name|apt source (URL suite components)
packages=()

# PostgreSQL: PGDG publishes every supported major version's client for bookworm.
pgdg() {
  repos+=("pgdg|https://www.postgresql.org/media/keys/ACCC4CF8.asc|pgdg.asc|https://apt.postgresql.org/pub/repos/apt ${codename}-pgdg main")
  packages+=("postgresql-client-$1")
}
# MySQL: Oracle's repository (Debian ships only MariaDB). The 8.4 LTS client dumps 8.0 and 8.4 servers.
mysql_repo() {
  repos+=("mysql|https://repo.mysql.com/RPM-GPG-KEY-mysql-2023|mysql.asc|https://repo.mysql.com/apt/debian ${codename} mysql-$1")
  packages+=(mysql-community-client)
}
# MariaDB 11: MariaDB's repository (Debian 12 ships 10.11).
mariadb_repo() {
  repos+=("mariadb|https://mariadb.org/mariadb_release_signing_key.pgp|mariadb-keyring.pgp|https://mirror.mariadb.org/repo/$1/debian ${codename} main")
  packages+=(mariadb-client)
}
# MongoDB: the database tools (mongodump/mongorestore) come from MongoDB's repository.
mongo_repo() {
  repos+=("mongodb-org-$1|https://pgp.mongodb.com/server-$1.asc|mongodb-server-$1.asc|https://repo.mongodb.org/apt/debian ${codename}/mongodb-org/$1 main")
  packages+=(mongodb-database-tools)
}
need_version() {
  local v
  for v in "$@"; do [[ $version == "$v" ]] && return 0; done
  die "${engine}: no image for version '${version}' (have: $*)"
}

# Debian 12's own client versions, for CLIENTS_FROM=debian.
debian_only() {
  case "$engine" in
    pg) need_version 15; packages+=(postgresql-client-15) ;;
    mariadb) need_version 10; packages+=(mariadb-client) ;;
    redis) need_version 7; packages+=(redis-tools) ;;
    sqlite) need_version 3; packages+=(sqlite3) ;;
    all)
      [[ -z $version || $version == latest ]] || die "all: takes no version"
      packages+=(postgresql-client-15 mariadb-client redis-tools sqlite3)
      ;;
    mysql | mongo) die "${engine}: Debian has no client package (CLIENTS_FROM=vendor)" ;;
    *) die "unknown engine '${engine}' (pg mysql mariadb mongo redis sqlite all)" ;;
  esac
}

# The newest clients, from each vendor's repository (the default).
vendor_repos() {
  case "$engine" in
    pg) need_version 15 16 17; pgdg "$version" ;;
    mysql) need_version 8; mysql_repo 8.4-lts ;;
    mariadb)
      need_version 10 11
      if [[ $version == 10 ]]; then packages+=(mariadb-client); else mariadb_repo 11.8; fi
      ;;
    mongo) need_version 7 8; mongo_repo "${version}.0" ;;
    redis) need_version 7; packages+=(redis-tools) ;;
    sqlite) need_version 3; packages+=(sqlite3) ;;
    all)
      [[ -z $version || $version == latest ]] || die "all: takes no version"
      # The newest client of each engine: pg_dump and mongodump dump older servers.
      pgdg 17
      mariadb_repo 11.8
      mongo_repo 8.0
      packages+=(redis-tools sqlite3)
      ;;
    *) die "unknown engine '${engine}' (pg mysql mariadb mongo redis sqlite all)" ;;
  esac
}

case "$clients_from" in
  vendor) vendor_repos ;;
  debian) debian_only ;;
  *) die "CLIENTS_FROM must be vendor or debian, not '${clients_from}'" ;;
esac

# The clients each image must have on PATH (checked after installing).
check=()
case "$engine" in
  pg) check=(pg_dump pg_restore psql) ;;
  mysql) check=(mysqldump mysql) ;;
  mariadb) check=(mariadb-dump mariadb) ;;
  mongo) check=(mongodump mongorestore) ;;
  redis) check=(redis-cli) ;;
  sqlite) check=(sqlite3) ;;
  all) check=(pg_dump pg_restore psql mariadb-dump mariadb mysqldump mysql mongodump mongorestore redis-cli sqlite3) ;;
esac
if [[ $clients_from == debian && $engine == all ]]; then
  check=(pg_dump pg_restore psql mariadb-dump mariadb mysqldump mysql redis-cli sqlite3)
fi
if [[ -n ${DRY_RUN:-} ]]; then
  for r in "${repos[@]}"; do
    IFS='|' read -r name _ _ source <<<"$r"
    printf 'repo %s %s\n' "$name" "$source"
  done
  printf 'packages %s\n' "${packages[*]}"
  printf 'tools %s\n' "${check[*]}"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ca-certificates tzdata libssl3
if ((${#repos[@]})); then
  apt-get install -y --no-install-recommends curl
  install -d -m 0755 /etc/apt/keyrings
  for r in "${repos[@]}"; do
    IFS='|' read -r name key_url key_file source <<<"$r"
    curl -fsSL --retry 3 -o "/etc/apt/keyrings/${key_file}" "$key_url"
    printf 'deb [signed-by=/etc/apt/keyrings/%s] %s\n' "$key_file" "$source" >"/etc/apt/sources.list.d/${name}.list"
  done
  apt-get update
fi
apt-get install -y --no-install-recommends "${packages[@]}"
if ((${#repos[@]})); then
  apt-get purge -y --auto-remove curl
fi

# The mysql engine runs `mysqldump`/`mysql`; where only MariaDB's client is installed (the `all`
# image), point those names at MariaDB's tools if the package did not already.
if [[ $engine == all ]]; then
  for pair in mysqldump:mariadb-dump mysql:mariadb; do
    if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
      ln -s "$(command -v "${pair##*:}")" "/usr/local/bin/${pair%%:*}"
    fi
  done
fi

# Every client must be there, or the build fails here rather than at 2 a.m.
for tool in "${check[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "${tool} is missing after installing ${packages[*]}"
done

apt-get clean
rm -rf /var/lib/apt/lists/*
