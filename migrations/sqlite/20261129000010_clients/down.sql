DROP TABLE client_assertions;
DROP TABLE clients;
