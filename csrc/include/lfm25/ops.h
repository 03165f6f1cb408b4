// lfm25 kernel API: one plain params struct per op (raw pointers, sizes, strides in elements) -> Status.
// Nothing here knows torch or Python. Shapes and semantics: DESIGN.md section 2.
//
// Layout rule shared by every op: the last dimension of every tensor is contiguous; the other strides are
// given explicitly, so views of a projection output need no copy. Index tensors are int32.
//
// NOTE: every field is a 64-bit integer, a pointer, a double or a 32-bit value placed in pairs, so the
// structs have the same layout on every LP64 target; the aarch64 test runner receives them as bytes.
#pragma once
#include <cstdint>

namespace lfm25 {

enum class DType : int32_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

enum class Status : int32_t {
  kOk = 0,
  kUnsupportedDType,
  kUnsupportedShape,   // a compile-time-switched size (K, head_dim) outside the supported set
  kBadStateIndex,      // state_indices value outside [-1, S)
  kBadCuSeqlens,       // cu_seqlens not non-decreasing from 0 to N
  kBadSlot,            // slot_mapping value outside [-1, n_slots)
  kBadPosition,        // negative position
  kBadSeqLen,          // seq_lens value outside [0, capacity]
  kBadBlockTable,      // block_table entry outside [0, n_blocks) for a used block
  kUnsupportedLayout,  // packed weights given to a kernel table that reads rows
  kCudaError,
};

const char* status_message(Status s);

// short_conv (prefill): y = C * conv_K(B * X), conv state read/written per sequence.
// bcx [B, T, 3D] dense (cu_seqlens == nullptr) or [N, 3D] packed; y has the same leading dims, width D.
struct ShortConvParams {
  const void* x;            // bcx; columns [0,D) = B, [D,2D) = C, [2D,3D) = X
  void* y;                  // gated output
  const void* weight;       // [D, K]
  void* state;              // [S, K-1, D] or nullptr
  const int32_t* cu_seqlens;         // [n_seq+1] or nullptr (dense)
  const int32_t* state_indices;      // [n_seq] or nullptr (slot i for sequence i)
  const uint8_t* has_initial_state;  // [n_seq] bool or nullptr (all true)
  int64_t x_batch_stride, x_token_stride;
  int64_t y_batch_stride, y_token_stride;
  int64_t weight_stride;    // between channels; taps contiguous
  int64_t state_slot_stride, state_row_stride;
  int64_t batch;            // dense: B; packed: number of sequences
  int64_t seqlen;           // dense: T; packed: N (total tokens)
  int64_t dim;              // D
  int64_t width;            // K in 2..4
  int64_t n_slots;          // S
  DType dtype;              // bcx, y, state
  DType weight_dtype;       // dtype or kF32
  int32_t num_threads;
  int32_t pad_;
};

// short_conv_update (decode): one token per sequence, state shifted by one row in place.
struct ShortConvUpdateParams {
  const void* x;            // [B, 3D]
  void* y;                  // [B, D]
  const void* weight;       // [D, K]
  void* state;              // [S, K-1, D]
  const int32_t* state_indices;  // [B] or nullptr
  int64_t x_batch_stride, y_batch_stride, weight_stride;
  int64_t state_slot_stride, state_row_stride;
  int64_t batch, dim, width, n_slots;
  DType dtype, weight_dtype;
  int32_t num_threads;
  int32_t pad_;
};

// qk_norm_rope_append: q_out = rope(rmsnorm(q)); k_cache/v_cache[slot] = rope(rmsnorm(k)), v.
// Caches [n_blocks, block_size, Hkv, d]; slot = block * block_size + offset (contiguous caches: block = batch row).
struct QkNormRopeAppendParams {
  const void* q;  const void* k;  const void* v;   // [N, H, d]
  void* q_out;                                      // [N, Hq, d] contiguous
  const void* q_norm_weight; const void* k_norm_weight;  // [d]
  const float* inv_freq;        // [d/2] RoPE inverse frequencies, computed by the caller exactly as transformers
                                // does (fp32 theta^(-2j/d)), so the angles match it bit for bit
  const int32_t* positions;     // [N]
  const int32_t* slot_mapping;  // [N], -1 = do not write
  void* k_cache; void* v_cache;
  int64_t q_token_stride, q_head_stride;
  int64_t k_token_stride, k_head_stride;
  int64_t v_token_stride, v_head_stride;
  int64_t cache_block_stride, cache_token_stride, cache_head_stride;  // same for k_cache and v_cache
  int64_t n_tokens, n_q_heads, n_kv_heads, head_dim;
  int64_t n_blocks, block_size;
  double eps;
  DType dtype, weight_dtype;
  int32_t num_threads;
  int32_t pad_;
};

// gqa_decode: out[b, h] = softmax(scale * q[b, h] . K[b, h/G]^T) V[b, h/G] over seq_lens[b] cached tokens.
// block_table == nullptr: contiguous cache, sequence b owns block b and block_size = L_max.
struct GqaDecodeParams {
  const void* q;                // [B, Hq, d]
  void* out;                    // [B, Hq, d] contiguous
  const void* k_cache; const void* v_cache;
  const int32_t* seq_lens;      // [B]
  const int32_t* block_table;   // [B, max_blocks] or nullptr
  int64_t q_batch_stride, q_head_stride;
  int64_t cache_block_stride, cache_token_stride, cache_head_stride;
  int64_t block_table_stride;
  int64_t batch, n_q_heads, n_kv_heads, head_dim;
  int64_t n_blocks, block_size, max_blocks;
  double scale;
  DType dtype;
  int32_t num_threads;
};

// rms_norm: y = w * x / rms(x); with residual: h = x + residual (rounded), y = w * h / rms(h), residual_out = h.
struct RmsNormParams {
  const void* x;             // [M, D]
  const void* residual;      // [M, D] or nullptr
  void* y;                   // [M, D] contiguous
  void* residual_out;        // [M, D] contiguous, when residual is given
  const void* weight;        // [D]
  int64_t x_row_stride, residual_row_stride;
  int64_t rows, dim;
  double eps;
  DType dtype, weight_dtype;
  int32_t num_threads;
  int32_t pad_;
};


// How linear's weights are stored.
enum class WeightLayout : int32_t {
  kRows = 0,            // weight (and gate_weight) [N, K], rows at their strides
  kAmxTiles = 1,        // bf16 packed by lfm25_kernels.pack_weight for the "amx" table (layout in linear_amx.cpp)
  kAmxTilesGated = 2,   // the same, weight and gate packed together; gate_weight unused
};

// linear: y[m, n] = sum_k x[m, k] * weight[n, k] (torch.nn.functional.linear without bias), fp32 accumulation,
// rounded once. With gate_weight: y = silu(g) * u for g = x . gate_weight, u = x . weight, each rounded to the
// dtype, then silu(g) rounded and the product rounded: the LFM2 SwiGLU input (w1 = gate, w3 = up) exactly as
// torch's eager ops round it. Built for the few rows of a decode step; weights are read once per call.
struct LinearParams {
  const void* x;             // [M, K]
  const void* weight;        // [N, K]
  const void* gate_weight;   // [N, K] or nullptr
  void* y;                   // [M, N]
  int64_t x_row_stride, weight_row_stride, gate_row_stride, y_row_stride;
  int64_t rows, in_features, out_features;  // M, K, N
  DType dtype;               // x, weights and y
  int32_t num_threads;
  WeightLayout weight_layout;   // kRows unless weight was packed (then weight_row_stride is unused)
  int32_t pad_;
};

}  // namespace lfm25
