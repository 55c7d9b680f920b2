--
-- 0.1.0 -> 0.2.0, after the functions are (re)defined
--
ALTER TABLE etl_stream.tables
    ADD CONSTRAINT tables_strategy_check CHECK (strategy = ANY (etl_stream._strategies())),
    ADD CONSTRAINT tables_watermark_kind_check
        CHECK (watermark_kind IS NULL OR etl_stream._is_watermark_kind(watermark_kind));
