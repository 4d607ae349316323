DROP TABLE known_login_clients;
DROP TABLE failure_buckets;
