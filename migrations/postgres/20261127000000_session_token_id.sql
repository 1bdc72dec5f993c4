-- The id (`jti`) of the session's current token. `POST /session/refresh`
-- replaces it, and the replaced token stops working. Null for sessions made
-- before this column: any of their tokens is accepted until a refresh.
alter table sessions add column token_id text;
