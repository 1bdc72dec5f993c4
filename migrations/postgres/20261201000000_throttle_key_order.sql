-- Throttle keys are machine-made strings compared byte by byte, so that a
-- success can clear every counter of a user name with an index range scan
-- (`key >= prefix and key < successor`) instead of reading the whole table.
alter table login_throttle alter column key type text collate "C";
