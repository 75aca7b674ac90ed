-- Audio and image tokens, each a part of the input, output or cached count: priced at their
-- own rates (issue 29). Older spans keep NULL.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS input_audio_tokens Nullable(Int64) AFTER reasoning_tokens;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS output_audio_tokens Nullable(Int64) AFTER input_audio_tokens;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_audio_read_tokens Nullable(Int64) AFTER output_audio_tokens;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS input_image_tokens Nullable(Int64) AFTER cache_audio_read_tokens;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS output_image_tokens Nullable(Int64) AFTER input_image_tokens;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_image_read_tokens Nullable(Int64) AFTER output_image_tokens;
