-- Audio and image tokens, each a part of the input, output or cached count: priced at their
-- own rates (issue 29). Older spans keep NULL: nothing of theirs was audio or image as far as
-- anyone said.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS input_audio_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS output_audio_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_audio_read_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS input_image_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS output_image_tokens BIGINT;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS cache_image_read_tokens BIGINT;
