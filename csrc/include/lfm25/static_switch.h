// The one vocabulary of switches of the CPU and CUDA kernels: a runtime value that shapes the inner loops
// (dtype, conv width, head_dim, a bool such as "16-byte aligned") becomes the constexpr NAME seen by the body,
// a lambda returning Status. An unsupported value returns the Status naming it instead of calling the body.
// No CUDA headers: g++ and nvcc both compile it (under nvcc the lambdas are host lambdas, so no
// --extended-lambda); a CUDA kernel maps the DType NAME to its storage type with Storage<NAME>
// (csrc/cuda/common.cuh).
#pragma once
#include "lfm25/ops.h"

#define LFM25_DTYPE_SWITCH(DTYPE_VALUE, NAME, ...)                 \
  [&]() -> ::lfm25::Status {                                        \
    switch (DTYPE_VALUE) {                                          \
      case ::lfm25::DType::kF32: {                                  \
        constexpr ::lfm25::DType NAME = ::lfm25::DType::kF32;       \
        return __VA_ARGS__();                                       \
      }                                                             \
      case ::lfm25::DType::kF16: {                                  \
        constexpr ::lfm25::DType NAME = ::lfm25::DType::kF16;       \
        return __VA_ARGS__();                                       \
      }                                                             \
      case ::lfm25::DType::kBF16: {                                 \
        constexpr ::lfm25::DType NAME = ::lfm25::DType::kBF16;      \
        return __VA_ARGS__();                                       \
      }                                                             \
    }                                                               \
    return ::lfm25::Status::kUnsupportedDType;                      \
  }()

// The activations' dtype and the KV caches' (ops.h, qk_norm_rope_append): both the same, or fp32 activations
// over a fp16 or bf16 cache.
#define LFM25_KV_DTYPE_SWITCH(DTYPE_VALUE, CACHE_DTYPE_VALUE, NAME, CACHE_NAME, ...)         \
  [&]() -> ::lfm25::Status {                                                                 \
    if ((DTYPE_VALUE) == (CACHE_DTYPE_VALUE))                                                \
      return LFM25_DTYPE_SWITCH(DTYPE_VALUE, NAME, [&] {                                     \
        constexpr ::lfm25::DType CACHE_NAME = NAME;                                          \
        return __VA_ARGS__();                                                                \
      });                                                                                    \
    if ((DTYPE_VALUE) != ::lfm25::DType::kF32) return ::lfm25::Status::kUnsupportedDType;   \
    constexpr ::lfm25::DType NAME = ::lfm25::DType::kF32;                                    \
    return LFM25_DTYPE_SWITCH(CACHE_DTYPE_VALUE, CACHE_NAME, __VA_ARGS__);                   \
  }()

#define LFM25_WIDTH_SWITCH(WIDTH_VALUE, NAME, ...)                  \
  [&]() -> ::lfm25::Status {                                        \
    switch (WIDTH_VALUE) {                                          \
      case 2: { constexpr int NAME = 2; return __VA_ARGS__(); }     \
      case 3: { constexpr int NAME = 3; return __VA_ARGS__(); }     \
      case 4: { constexpr int NAME = 4; return __VA_ARGS__(); }     \
    }                                                               \
    return ::lfm25::Status::kUnsupportedShape;                      \
  }()

#define LFM25_HEAD_DIM_SWITCH(HEAD_DIM_VALUE, NAME, ...)            \
  [&]() -> ::lfm25::Status {                                        \
    switch (HEAD_DIM_VALUE) {                                       \
      case 32: { constexpr int NAME = 32; return __VA_ARGS__(); }   \
      case 64: { constexpr int NAME = 64; return __VA_ARGS__(); }   \
      case 96: { constexpr int NAME = 96; return __VA_ARGS__(); }   \
      case 128: { constexpr int NAME = 128; return __VA_ARGS__(); } \
    }                                                               \
    return ::lfm25::Status::kUnsupportedShape;                      \
  }()

#define LFM25_BOOL_SWITCH(VALUE, NAME, ...)                         \
  [&]() -> ::lfm25::Status {                                        \
    if (VALUE) {                                                    \
      constexpr bool NAME = true;                                   \
      return __VA_ARGS__();                                         \
    }                                                               \
    constexpr bool NAME = false;                                    \
    return __VA_ARGS__();                                           \
  }()
