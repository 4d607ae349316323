-- Runs once, when the `pgdata` volume is initialised (the official image
-- runs /docker-entrypoint-initdb.d as its superuser, `postgres`).
--
-- The services connect as `auth`: the owner of the `auth` database and of
-- nothing else, no superuser, no role or database creation, no replication.
-- Its password is the one the `init` step generated into the `db-password`
-- volume; psql reads it here, so it is on no command line and in no log.
\set auth_password `cat /db-password/auth`
CREATE ROLE auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'auth_password';
CREATE DATABASE auth OWNER auth;
