// lfm25 kernel API: one plain params struct per op (raw pointers, sizes, strides in elements) -> Status, and
// THE OP LIST (LFM25_OPS, at the end), from which the kernel tables, the CUDA entry points, the Python bindings
// and the aarch64 test runner are generated. Nothing here knows torch or Python. Shapes and semantics:
// docs/DESIGN.md section 3.
//
// Layout rule shared by every op: the last dimension of every tensor is contiguous; the other strides are
// given explicitly, so views of a projection output need no copy. Index tensors are int32.
//
// NOTE: every field is a 64-bit integer, a pointer, a double or a 32-bit value placed in pairs, so the
// structs have the same layout on every LP64 target; the aarch64 test runner receives them as bytes.
//
// An optional tensor has a presence flag, `<field>_given` (1 when passed): a passed tensor without elements
// (a conv state of 0 slots, a block table of 0 columns) has a null data pointer, so null never means absent.
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
  kDuplicateStateIndex,  // a state slot given twice in one call (state_indices, -1 aside)
};

const char* status_message(Status s);

// A params struct is written once, as a field list FIELDS(F) that calls F(type, name) per field in layout
// order. LFM25_DEFINE_PARAMS declares the fields and `visit_fields(v)`, which calls v("name", &Struct::name)
// for each (the Python bindings are generated from it); the _PADDED form adds a trailing `int32_t pad_`, not
// a field, where the 32-bit values would otherwise end unpaired.
#define LFM25_PARAMS_MEMBER(TYPE, NAME) TYPE NAME;
#define LFM25_PARAMS_VISIT(TYPE, NAME) v(#NAME, &Self::NAME);
#define LFM25_PARAMS_BODY(STRUCT, FIELDS) \
  FIELDS(LFM25_PARAMS_MEMBER)             \
  template <class V>                      \
  static void visit_fields(V&& v) {       \
    using Self = STRUCT;                  \
    FIELDS(LFM25_PARAMS_VISIT)            \
  }
#define LFM25_DEFINE_PARAMS(STRUCT, FIELDS) struct STRUCT { LFM25_PARAMS_BODY(STRUCT, FIELDS) };
#define LFM25_DEFINE_PADDED_PARAMS(STRUCT, FIELDS) struct STRUCT { LFM25_PARAMS_BODY(STRUCT, FIELDS) int32_t pad_; };

// short_conv (prefill): y = C * conv_K(B * X), conv state read/written per sequence.
// bcx [B, T, 3D] dense (cu_seqlens == nullptr) or [N, 3D] packed; y has the same leading dims, width D.
#define LFM25_SHORT_CONV_FIELDS(F)                                                           \
  F(const void*, x)                    /* bcx; columns [0,D) = B, [D,2D) = C, [2D,3D) = X */ \
  F(void*, y)                          /* gated output */                                    \
  F(const void*, weight)               /* [D, K] */                                          \
  F(void*, state)                      /* [S, K-1, D] if state_given */                      \
  F(const int32_t*, cu_seqlens)        /* [n_seq+1] if cu_seqlens_given (else dense) */      \
  F(const int32_t*, state_indices)     /* [n_seq] if given (else slot i for sequence i) */   \
  F(const uint8_t*, has_initial_state) /* [n_seq] bool if given (else all true) */           \
  F(int64_t, x_batch_stride) F(int64_t, x_token_stride)                                      \
  F(int64_t, y_batch_stride) F(int64_t, y_token_stride)                                      \
  F(int64_t, weight_stride)            /* between channels; taps contiguous */               \
  F(int64_t, state_slot_stride) F(int64_t, state_row_stride)                                 \
  F(int64_t, batch)                    /* dense: B; packed: number of sequences */           \
  F(int64_t, seqlen)                   /* dense: T; packed: N (total tokens) */              \
  F(int64_t, dim)                      /* D */                                               \
  F(int64_t, width)                    /* K in 2..4 */                                       \
  F(int64_t, n_slots)                  /* S */                                               \
  F(int32_t, state_given) F(int32_t, cu_seqlens_given)                                       \
  F(int32_t, state_indices_given) F(int32_t, has_initial_state_given)                        \
  F(DType, dtype)                      /* bcx, y, state */                                   \
  F(DType, weight_dtype)               /* dtype or kF32 */                                   \
  F(int32_t, num_threads)
LFM25_DEFINE_PADDED_PARAMS(ShortConvParams, LFM25_SHORT_CONV_FIELDS)

// short_conv_update (decode): one token per sequence, state shifted by one row in place.
#define LFM25_SHORT_CONV_UPDATE_FIELDS(F)                                         \
  F(const void*, x)                /* [B, 3D] */                                  \
  F(void*, y)                      /* [B, D] */                                   \
  F(const void*, weight)           /* [D, K] */                                   \
  F(void*, state)                  /* [S, K-1, D] */                              \
  F(const int32_t*, state_indices) /* [B] if state_indices_given */              \
  F(int64_t, x_batch_stride) F(int64_t, y_batch_stride) F(int64_t, weight_stride) \
  F(int64_t, state_slot_stride) F(int64_t, state_row_stride)                      \
  F(int64_t, batch) F(int64_t, dim) F(int64_t, width) F(int64_t, n_slots)         \
  F(int32_t, state_indices_given)                                                 \
  F(DType, dtype) F(DType, weight_dtype)                                          \
  F(int32_t, num_threads)
LFM25_DEFINE_PARAMS(ShortConvUpdateParams, LFM25_SHORT_CONV_UPDATE_FIELDS)

// qk_norm_rope_append: q_out = rope(rmsnorm(q)); k_cache/v_cache[slot] = rope(rmsnorm(k)), v.
// Caches [n_blocks, block_size, Hkv, d]; slot = block * block_size + offset (contiguous caches: block = batch row).
// The caches are stored as cache_dtype: dtype, or kF16 / kBF16 under kF32 activations (half the memory, as
// llama.cpp's f16 cache); k is rounded once, from fp32 to cache_dtype, and v converted.
#define LFM25_QK_NORM_ROPE_APPEND_FIELDS(F)                                                               \
  F(const void*, q) F(const void*, k) F(const void*, v)       /* [N, H, d] */                             \
  F(void*, q_out)                                             /* [N, Hq, d] contiguous */                 \
  F(const void*, q_norm_weight) F(const void*, k_norm_weight) /* [d] */                                   \
  F(const float*, inv_freq)       /* [d/2] RoPE inverse frequencies, computed by the caller exactly as */ \
                                  /* transformers does (fp32 theta^(-2j/d)), so the angles match it */    \
                                  /* bit for bit */                                                       \
  F(const int32_t*, positions)    /* [N] */                                                               \
  F(const int32_t*, slot_mapping) /* [N], -1 = do not write */                                            \
  F(void*, k_cache) F(void*, v_cache)                                                                     \
  F(int64_t, q_token_stride) F(int64_t, q_head_stride)                                                    \
  F(int64_t, k_token_stride) F(int64_t, k_head_stride)                                                    \
  F(int64_t, v_token_stride) F(int64_t, v_head_stride)                                                    \
  F(int64_t, cache_block_stride) F(int64_t, cache_token_stride)                                           \
  F(int64_t, cache_head_stride)   /* same for k_cache and v_cache */                                      \
  F(int64_t, n_tokens) F(int64_t, n_q_heads) F(int64_t, n_kv_heads) F(int64_t, head_dim)                  \
  F(int64_t, n_blocks) F(int64_t, block_size)                                                             \
  F(double, eps)                                                                                          \
  F(DType, dtype) F(DType, weight_dtype)                                                                  \
  F(DType, cache_dtype)           /* k_cache, v_cache: dtype, or kF16 / kBF16 when dtype is kF32 */       \
  F(int32_t, num_threads)
LFM25_DEFINE_PARAMS(QkNormRopeAppendParams, LFM25_QK_NORM_ROPE_APPEND_FIELDS)

// gqa_decode: out[b, h] = softmax(scale * q[b, h] . K[b, h/G]^T) V[b, h/G] over seq_lens[b] cached tokens.
// Without block_table (block_table_given = 0): contiguous cache, sequence b owns block b and block_size = L_max.
// The caches are stored as cache_dtype (qk_norm_rope_append's rule), read into fp32.
#define LFM25_GQA_DECODE_FIELDS(F)                                                            \
  F(const void*, q)                /* [B, Hq, d] */                                           \
  F(void*, out)                    /* [B, Hq, d] contiguous */                                \
  F(const void*, k_cache) F(const void*, v_cache)                                             \
  F(const int32_t*, seq_lens)      /* [B] */                                                  \
  F(const int32_t*, block_table)   /* [B, max_blocks] if block_table_given */                 \
  F(int64_t, q_batch_stride) F(int64_t, q_head_stride)                                        \
  F(int64_t, cache_block_stride) F(int64_t, cache_token_stride) F(int64_t, cache_head_stride) \
  F(int64_t, block_table_stride)                                                              \
  F(int64_t, batch) F(int64_t, n_q_heads) F(int64_t, n_kv_heads) F(int64_t, head_dim)         \
  F(int64_t, n_blocks) F(int64_t, block_size) F(int64_t, max_blocks)                          \
  F(double, scale)                                                                            \
  F(int32_t, block_table_given)                                                               \
  F(DType, dtype)                  /* q, out */                                               \
  F(DType, cache_dtype)            /* k_cache, v_cache */                                     \
  F(int32_t, num_threads)
LFM25_DEFINE_PARAMS(GqaDecodeParams, LFM25_GQA_DECODE_FIELDS)

// rms_norm: y = w * x / rms(x); with residual: h = x + residual (rounded), y = w * h / rms(h), residual_out = h.
#define LFM25_RMS_NORM_FIELDS(F)                                                \
  F(const void*, x)             /* [M, D] */                                    \
  F(const void*, residual)      /* [M, D] if residual_given */                  \
  F(void*, y)                   /* [M, D] contiguous */                         \
  F(void*, residual_out)        /* [M, D] contiguous, when residual is given */ \
  F(const void*, weight)        /* [D] */                                       \
  F(int64_t, x_row_stride) F(int64_t, residual_row_stride)                      \
  F(int64_t, rows) F(int64_t, dim)                                              \
  F(double, eps)                                                                \
  F(int32_t, residual_given)                                                    \
  F(DType, dtype) F(DType, weight_dtype)                                        \
  F(int32_t, num_threads)
LFM25_DEFINE_PARAMS(RmsNormParams, LFM25_RMS_NORM_FIELDS)

// How linear's weights are stored.
enum class WeightLayout : int32_t {
  kRows = 0,            // weight (and gate_weight) [N, K], rows at their strides
  kAmxTiles = 1,        // bf16 packed by lfm25_kernels.pack_weight for the "amx" table (layout in linear/amx.cpp)
  kAmxTilesGated = 2,   // the same, weight and gate packed together; gate_weight unused
  kPairs = 3,           // bf16 packed by pack_weight(layout="pairs") for the other x86 tables (linear/pairs.h)
  kPairsGated = 4,      // the same, weight and gate packed together; gate_weight unused
};
constexpr bool in_amx_tiles(WeightLayout l) {
  return l == WeightLayout::kAmxTiles || l == WeightLayout::kAmxTilesGated;
}
constexpr bool in_pairs(WeightLayout l) { return l == WeightLayout::kPairs || l == WeightLayout::kPairsGated; }

// linear: y[m, n] = sum_k x[m, k] * weight[n, k] (torch.nn.functional.linear without bias), fp32 accumulation,
// rounded once. With gate_weight: y = silu(g) * u for g = x . gate_weight, u = x . weight, each rounded to the
// dtype, then silu(g) rounded and the product rounded: the LFM2 SwiGLU input (w1 = gate, w3 = up) exactly as
// torch's eager ops round it. Built for the few rows of a decode step; weights are read once per call.
#define LFM25_LINEAR_FIELDS(F)                                                                                \
  F(const void*, x)              /* [M, K] */                                                                 \
  F(const void*, weight)         /* [N, K] */                                                                 \
  F(const void*, gate_weight)    /* [N, K] or nullptr */                                                      \
  F(void*, y)                    /* [M, N] */                                                                 \
  F(int64_t, x_row_stride) F(int64_t, weight_row_stride) F(int64_t, gate_row_stride) F(int64_t, y_row_stride) \
  F(int64_t, rows) F(int64_t, in_features) F(int64_t, out_features) /* M, K, N */                             \
  F(DType, dtype)                /* x, weights and y */                                                       \
  F(int32_t, num_threads)                                                                                     \
  F(WeightLayout, weight_layout) /* kRows unless weight was packed (then weight_row_stride is unused) */
LFM25_DEFINE_PADDED_PARAMS(LinearParams, LFM25_LINEAR_FIELDS)

// How linear_q's weights are quantized: groups of 32 consecutive inputs of one output row share an fp16 scale
// d, and a weight is d * q for an integer code q (docs/DESIGN.md section 4 has the formats and the layout).
enum class QuantFormat : int32_t {
  kInt8 = 0,   // q in [-127, 127], stored as the byte q + 128: 8.5 bits per weight
  kQ4 = 1,     // q in [-8, 7], stored as the nibble q + 8: 4.5 bits per weight
};

// linear_q: linear (and its SwiGLU form, rounded as linear rounds it) with quantized weights. Each row of x is
// quantized per group of 32 inputs to int8 codes with an fp32 scale (amax / 127), the dot products of codes
// are exact int32 sums per group, and y[m, n] = sum over groups g of float(sum_g) * (d[n, g] * s[m, g]) in
// fp32, in group order: the same bits on every kernel table, and a row's result never depends on the others.
// Weights are packed by lfm25_kernels.quantize_weight: tiles of 32 output rows (a gated weight: 16 rows of
// weight and the same 16 rows of the gate), per tile and group of 32 inputs the codes of the tile's two blocks
// of 16 rows, then their fp16 scales: one stream per tile.
#define LFM25_LINEAR_Q_FIELDS(F)                                                          \
  F(const void*, x)              /* [M, K] */                                             \
  F(const uint8_t*, weight)      /* [tiles, ceil(K/32), 1088 (int8) or 576 (q4) bytes] */ \
  F(void*, y)                    /* [M, N] */                                             \
  F(int64_t, x_row_stride) F(int64_t, y_row_stride)                                       \
  F(int64_t, rows) F(int64_t, in_features) F(int64_t, out_features) /* M, K, N */         \
  F(DType, dtype)                /* x and y */                                            \
  F(QuantFormat, format)                                                                  \
  F(int32_t, gated)              /* 1: y = silu(x . gate^T) * (x . weight^T) */           \
  F(int32_t, num_threads)
LFM25_DEFINE_PARAMS(LinearQParams, LFM25_LINEAR_Q_FIELDS)

// THE OP LIST: X(op, Params, backends) per op. backends is `cuda` where csrc/cuda/<op>.cu has a kernel as
// well as the CPU, `cpu` where the op is CPU only (linear, linear_q: on CUDA, torch's cuBLAS GEMM serves).
#define LFM25_OPS(X)                                   \
  X(short_conv, ShortConvParams, cuda)                 \
  X(short_conv_update, ShortConvUpdateParams, cuda)    \
  X(qk_norm_rope_append, QkNormRopeAppendParams, cuda) \
  X(gqa_decode, GqaDecodeParams, cuda)                 \
  X(rms_norm, RmsNormParams, cuda)                     \
  X(linear, LinearParams, cpu)                         \
  X(linear_q, LinearQParams, cpu)

// LFM25_IF_CUDA(backends, code...): the code for an op with a CUDA kernel, nothing for a CPU-only op.
#define LFM25_IF_CUDA(BACKENDS, ...) LFM25_IF_CUDA_##BACKENDS(__VA_ARGS__)
#define LFM25_IF_CUDA_cuda(...) __VA_ARGS__
#define LFM25_IF_CUDA_cpu(...)

}  // namespace lfm25
