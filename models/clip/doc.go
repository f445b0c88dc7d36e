// Package clip holds the CLIP text side of Stable Diffusion: the byte-level BPE tokenizer of
// openai/CLIP and transformers' CLIPTextModel / CLIPTextModelWithProjection.
//
// # Tokenizer
//
// Tokenizer ports openai/CLIP clip/simple_tokenizer.py (SimpleTokenizer). It loads either the
// official merges file (LoadBPE: bpe_simple_vocab_16e6.txt.gz, vocabulary built as
// SimpleTokenizer builds it) or a transformers tokenizer folder (LoadTokenizer / LoadVocabMerges:
// vocab.json + merges.txt, with pad_token and model_max_length from its JSON files); both give
// the same ids. BOS and EOS are the ids of <|startoftext|> and <|endoftext|> in the vocabulary
// (49406 and 49407 for CLIP's).
//
// Encode(prompt) gives the raw BPE ids (no BOS/EOS, not truncated):
//
//	CleanText: ftfy.fix_text (FixText) → html.unescape twice → strip → collapse whitespace → lower
//	split: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//	each piece: UTF-8 bytes → bytes_to_unicode characters, "</w>" on the last, greedy BPE by merge rank
//
// Python semantics are reproduced where Go's differ: str.strip/str.lower (Final_Sigma, İ), the
// regex module's \s, html.unescape (entities without ";", dropped invalid code points), and
// UTF-8 decoding with errors="replace" in Decode.
//
// FixText ports ftfy 6.3.1's fix_text with its default configuration, every step of it:
// unescape_html, fix_encoding (the badness heuristic and mojibake repair through latin-1,
// sloppy-windows-1250/1251/1252/1253/1254/1257, iso-8859-2, macroman and cp437 with
// restore_byte_a0, replace_lossy_sequences, utf-8-variants, decode_inconsistent_utf8 and
// fix_c1_controls), fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
// fix_line_breaks, fix_surrogates (on invalid UTF-8 input, see FixText), remove_terminal_escapes,
// remove_control_chars and NFC normalisation, line by line until stable. It is checked against
// ftfy's own regression cases (testdata/ftfy).
//
// Fixed-length encodings for the text encoders:
//
//	EncodeFixed(prompt, maxLen, pad) = [BOS] + tokens[:maxLen-2] + [EOS] + pad…  (length maxLen)
//
// SD1.x pads with EOS (49407), SDXL's second tokenizer with 0 ("!"); maxLen is the tokenizer's
// model_max_length / the encoder's max_position_embeddings (77 for SD). Longer prompts are cut.
//
// EncodeChunks(prompt, maxLen, pad) is the long-prompt mode of A1111 / ComfyUI: the tokens are cut
// into windows of maxLen-2, each framed as [BOS] + window + [EOS] + padding; the text encoder runs
// on every chunk and the hidden states are concatenated along the sequence axis (SDXL's pooled
// embedding is taken from the first chunk). A1111's optional back-tracking to the last comma is not
// done.
//
// # Text models
//
// TextModel ports transformers models/clip/modeling_clip.py (text half): token + position
// embeddings, num_hidden_layers pre-LN encoder layers with causal self-attention (no padding mask,
// as SD pipelines call it) and a quick_gelu or gelu MLP, final_layer_norm, pooling, and
// text_projection for CLIPTextModelWithProjection (architectures in config.json). Forward returns
// every hidden state (0 = embeddings, i = after layer i, no final LayerNorm), last_hidden_state,
// the pooled output and its index (PoolIndex: argmax(input_ids) when every row's largest id is
// 49407, else the first config.eos_token_id), and text_embeds. Weights use the transformers keys
// (text_model.embeddings.token_embedding.weight, …, text_projection.weight) as scope paths; a
// position_ids buffer in the file is ignored. Load(dir) reads config.json and model.safetensors.
package clip
