-- name: claim token
-- Version 4: the claim token, which lets a claim read back the jobs it took as one row.

ALTER TABLE tasque_jobs ADD COLUMN claim_token INTEGER;
