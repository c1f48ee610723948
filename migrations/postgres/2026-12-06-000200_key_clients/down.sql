DROP TABLE key_signals;
DROP TABLE key_clients;
