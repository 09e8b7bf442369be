-- A release whose migration fails: the table does not exist. Used by the tests to prove that a
-- failed migration stops the deploy and leaves traffic on the live colour.
ALTER TABLE no_such_table ADD COLUMN never INTEGER;
