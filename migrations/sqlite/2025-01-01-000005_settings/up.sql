-- Small durable settings, e.g. the generated JWT secret shared by the CLI and the server.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
