-- After V8 and the conversion of packed values (src/store/postgres/unpack.rs):
-- every stored result is JSONB, so the column can say so and packed can go.
-- Refuses to run while a packed value remains (the conversion did not finish).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM results WHERE packed IS NOT NULL) THEN
        RAISE EXCEPTION 'results.packed still holds values: the server converts them after V8 (mcp-orchestrator migrate)';
    END IF;
END $$;
DELETE FROM results WHERE result IS NULL;
ALTER TABLE results ALTER COLUMN result SET NOT NULL;
ALTER TABLE results DROP COLUMN packed;
