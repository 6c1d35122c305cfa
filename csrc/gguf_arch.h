/* gguf_arch.h: llama.cpp's model conventions in GGUF files, for loading them into llmc's models and writing llmc's
 * models as GGUF (internal). */
#ifndef LLMC_GGUF_ARCH_H
#define LLMC_GGUF_ARCH_H

#include <stddef.h>

#include "gguf.h"
#include "llmc.h"

/* The model configuration a GGUF file describes: general.architecture llama (Mistral when
 * {arch}.attention.sliding_window is set below the context), qwen2, qwen3 or gpt2, and the {arch}.* keys
 * llama.cpp's converter writes. tied_embeddings: no output.weight tensor. Llama 3's RoPE scaling is not in the
 * metadata but in a rope_freqs.weight tensor (the loader divides the frequencies by it). Errors name the key. */
llmc_status llmc_gguf_model_config(const llmc_gguf *g, llmc_model_config *c, int *gelu_tanh);

/* Tensor names between the Hugging Face checkpoint names llmc's models use and llama.cpp's: 1 when mapped. */
int llmc_gguf_name_from_hf(int arch, const char *hf, char *out, size_t cap);
int llmc_gguf_name_to_hf(int arch, const char *gguf, char *out, size_t cap);

/* llama.cpp's converter permutes the rows of llama's q and k projections (per head, HF's rotate-half pairs
 * (j, j + hd/2) become adjacent rows (2j, 2j + 1)). src, dst: (n_head * hd) rows of row_bytes bytes; inverse = 1
 * undoes it (GGUF -> HF), 0 applies it (HF -> GGUF). dst must not overlap src. */
void llmc_gguf_permute_rows(const void *src, void *dst, size_t n_head, size_t hd, size_t row_bytes, int inverse);

#endif
