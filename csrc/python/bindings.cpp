// lfm25_kernels._C: the only C++ that knows Python. Exposes each params struct with its fields by name
// (pointers as integers), runs a kernel with the GIL released and turns a Status into a ValueError.
// Shape, dtype and device checks live in lfm25_kernels/ops.py; index values are checked by the CPU kernels.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "../cpu/kernels.h"
#include "../cpu/parallel.h"
#include "lfm25/ops.h"
#ifdef LFM25_WITH_CUDA
#include "lfm25/cuda_ops.h"
#endif

namespace py = pybind11;
using namespace lfm25;

namespace {

// Binds the fields of a params struct: pointers as integers, enums (DType, WeightLayout) as int, the rest as
// they are. Also records the byte offset of every pointer field (the aarch64 test runner patches them after
// copying the struct).
template <class P>
class Fields {
 public:
  Fields(py::module_& m, const char* name) : cls_(m, name) {
    cls_.def(py::init<>());
    cls_.def("to_bytes", [](const P& p) { return py::bytes(reinterpret_cast<const char*>(&p), sizeof(P)); });
  }

  template <class F>
  Fields& operator()(const char* name, F P::*member) {
    if constexpr (std::is_pointer_v<F>) {
      P probe{};
      offsets_[name] = size_t(reinterpret_cast<char*>(&(probe.*member)) - reinterpret_cast<char*>(&probe));
      cls_.def_property(
          name, [member](const P& p) { return reinterpret_cast<uintptr_t>(p.*member); },
          [member](P& p, uintptr_t v) { p.*member = reinterpret_cast<F>(v); });
    } else if constexpr (std::is_enum_v<F>) {
      cls_.def_property(
          name, [member](const P& p) { return int(p.*member); },
          [member](P& p, int v) { p.*member = static_cast<F>(v); });
    } else {
      cls_.def_readwrite(name, member);
    }
    return *this;
  }

  ~Fields() {
    cls_.attr("pointer_offsets") = offsets_;
    cls_.attr("size") = sizeof(P);
  }

 private:
  py::class_<P> cls_;
  std::map<std::string, size_t> offsets_;
};

void check(Status s) {
  if (s != Status::kOk) throw py::value_error(status_message(s));
}

const cpu::KernelTable& table(const std::string& isa) {
  const cpu::KernelTable* t = cpu::kernel_table(isa.c_str());
  if (!t) {
    std::string avail;
    int n = 0;
    const char* const* names = cpu::available_isas(&n);
    for (int i = 0; i < n; ++i) avail += std::string(i ? ", " : "") + names[i];
    throw py::value_error("CPU ISA '" + isa + "' is unknown or not supported by this CPU; available: " + avail);
  }
  return *t;
}

// CPU launches recorded once and run back to back in one call (lfm25_kernels.CpuGraph): each entry holds a
// copy of its params struct and the kernel table it was recorded with.
class CpuGraph {
 public:
  template <class P>
  void add(const P& p, const std::string& isa, Status (*run)(const cpu::KernelTable&, const P&)) {
    const cpu::KernelTable* t = &table(isa);
    launches_.push_back([p, t, run] { return run(*t, p); });
  }

  // Every launch in order, stopping at the first error; with `seconds`, each launch's time (steady clock).
  void replay(std::vector<double>* seconds = nullptr) const {
    Status s = Status::kOk;
    {
      py::gil_scoped_release nogil;
      for (size_t i = 0; i < launches_.size() && s == Status::kOk; ++i) {
        if (!seconds) {
          s = launches_[i]();
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        s = launches_[i]();
        seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    check(s);
  }

  size_t size() const { return launches_.size(); }

 private:
  std::vector<std::function<Status()>> launches_;
};

// <op>_cpu(params, isa) runs the kernel now; CpuGraph.add(params, isa) records it for replay().
template <class P>
void def_cpu(py::module_& m, py::class_<CpuGraph>& graph, const char* name,
             Status (*run)(const cpu::KernelTable&, const P&)) {
  m.def(
      name,
      [run](const P& p, const std::string& isa) {
        const cpu::KernelTable& t = table(isa);
        Status s;
        {
          py::gil_scoped_release nogil;
          s = run(t, p);
        }
        check(s);
      },
      py::arg("params"), py::arg("isa") = "");
  graph.def(
      "add", [run](CpuGraph& g, const P& p, const std::string& isa) { g.add(p, isa, run); }, py::arg("params"),
      py::arg("isa") = "");
}

#ifdef LFM25_WITH_CUDA
template <class P>
void def_cuda(py::module_& m, const char* name, Status (*run)(const P&, void*)) {
  m.def(
      name, [run](const P& p, uintptr_t stream) { check(run(p, reinterpret_cast<void*>(stream))); },
      py::arg("params"), py::arg("stream"));
}
#endif

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "lfm25-kernels compiled kernels (raw pointers in, status out). Use lfm25_kernels, not this module.";

  py::enum_<DType>(m, "DType").value("f32", DType::kF32).value("f16", DType::kF16).value("bf16", DType::kBF16);

  Fields<ShortConvParams>(m, "ShortConvParams")
      ("x", &ShortConvParams::x)("y", &ShortConvParams::y)("weight", &ShortConvParams::weight)
      ("state", &ShortConvParams::state)("cu_seqlens", &ShortConvParams::cu_seqlens)
      ("state_indices", &ShortConvParams::state_indices)("has_initial_state", &ShortConvParams::has_initial_state)
      ("x_batch_stride", &ShortConvParams::x_batch_stride)("x_token_stride", &ShortConvParams::x_token_stride)
      ("y_batch_stride", &ShortConvParams::y_batch_stride)("y_token_stride", &ShortConvParams::y_token_stride)
      ("weight_stride", &ShortConvParams::weight_stride)
      ("state_slot_stride", &ShortConvParams::state_slot_stride)("state_row_stride", &ShortConvParams::state_row_stride)
      ("batch", &ShortConvParams::batch)("seqlen", &ShortConvParams::seqlen)("dim", &ShortConvParams::dim)
      ("width", &ShortConvParams::width)("n_slots", &ShortConvParams::n_slots)
      ("dtype", &ShortConvParams::dtype)("weight_dtype", &ShortConvParams::weight_dtype)
      ("num_threads", &ShortConvParams::num_threads);

  Fields<ShortConvUpdateParams>(m, "ShortConvUpdateParams")
      ("x", &ShortConvUpdateParams::x)("y", &ShortConvUpdateParams::y)("weight", &ShortConvUpdateParams::weight)
      ("state", &ShortConvUpdateParams::state)("state_indices", &ShortConvUpdateParams::state_indices)
      ("x_batch_stride", &ShortConvUpdateParams::x_batch_stride)("y_batch_stride", &ShortConvUpdateParams::y_batch_stride)
      ("weight_stride", &ShortConvUpdateParams::weight_stride)
      ("state_slot_stride", &ShortConvUpdateParams::state_slot_stride)
      ("state_row_stride", &ShortConvUpdateParams::state_row_stride)
      ("batch", &ShortConvUpdateParams::batch)("dim", &ShortConvUpdateParams::dim)
      ("width", &ShortConvUpdateParams::width)("n_slots", &ShortConvUpdateParams::n_slots)
      ("dtype", &ShortConvUpdateParams::dtype)("weight_dtype", &ShortConvUpdateParams::weight_dtype)
      ("num_threads", &ShortConvUpdateParams::num_threads);

  using QP = QkNormRopeAppendParams;
  Fields<QP>(m, "QkNormRopeAppendParams")
      ("q", &QP::q)("k", &QP::k)("v", &QP::v)("q_out", &QP::q_out)
      ("q_norm_weight", &QP::q_norm_weight)("k_norm_weight", &QP::k_norm_weight)("inv_freq", &QP::inv_freq)
      ("positions", &QP::positions)("slot_mapping", &QP::slot_mapping)("k_cache", &QP::k_cache)("v_cache", &QP::v_cache)
      ("q_token_stride", &QP::q_token_stride)("q_head_stride", &QP::q_head_stride)
      ("k_token_stride", &QP::k_token_stride)("k_head_stride", &QP::k_head_stride)
      ("v_token_stride", &QP::v_token_stride)("v_head_stride", &QP::v_head_stride)
      ("cache_block_stride", &QP::cache_block_stride)("cache_token_stride", &QP::cache_token_stride)
      ("cache_head_stride", &QP::cache_head_stride)
      ("n_tokens", &QP::n_tokens)("n_q_heads", &QP::n_q_heads)("n_kv_heads", &QP::n_kv_heads)("head_dim", &QP::head_dim)
      ("n_blocks", &QP::n_blocks)("block_size", &QP::block_size)("eps", &QP::eps)
      ("dtype", &QP::dtype)("weight_dtype", &QP::weight_dtype)("num_threads", &QP::num_threads);

  using GP = GqaDecodeParams;
  Fields<GP>(m, "GqaDecodeParams")
      ("q", &GP::q)("out", &GP::out)("k_cache", &GP::k_cache)("v_cache", &GP::v_cache)
      ("seq_lens", &GP::seq_lens)("block_table", &GP::block_table)
      ("q_batch_stride", &GP::q_batch_stride)("q_head_stride", &GP::q_head_stride)
      ("cache_block_stride", &GP::cache_block_stride)("cache_token_stride", &GP::cache_token_stride)
      ("cache_head_stride", &GP::cache_head_stride)("block_table_stride", &GP::block_table_stride)
      ("batch", &GP::batch)("n_q_heads", &GP::n_q_heads)("n_kv_heads", &GP::n_kv_heads)("head_dim", &GP::head_dim)
      ("n_blocks", &GP::n_blocks)("block_size", &GP::block_size)("max_blocks", &GP::max_blocks)
      ("scale", &GP::scale)("dtype", &GP::dtype)("num_threads", &GP::num_threads);

  Fields<RmsNormParams>(m, "RmsNormParams")
      ("x", &RmsNormParams::x)("residual", &RmsNormParams::residual)("y", &RmsNormParams::y)
      ("residual_out", &RmsNormParams::residual_out)("weight", &RmsNormParams::weight)
      ("x_row_stride", &RmsNormParams::x_row_stride)("residual_row_stride", &RmsNormParams::residual_row_stride)
      ("rows", &RmsNormParams::rows)("dim", &RmsNormParams::dim)("eps", &RmsNormParams::eps)
      ("dtype", &RmsNormParams::dtype)("weight_dtype", &RmsNormParams::weight_dtype)
      ("num_threads", &RmsNormParams::num_threads);

  Fields<LinearParams>(m, "LinearParams")
      ("x", &LinearParams::x)("weight", &LinearParams::weight)("gate_weight", &LinearParams::gate_weight)
      ("y", &LinearParams::y)("x_row_stride", &LinearParams::x_row_stride)
      ("weight_row_stride", &LinearParams::weight_row_stride)("gate_row_stride", &LinearParams::gate_row_stride)
      ("y_row_stride", &LinearParams::y_row_stride)("rows", &LinearParams::rows)
      ("in_features", &LinearParams::in_features)("out_features", &LinearParams::out_features)
      ("dtype", &LinearParams::dtype)("num_threads", &LinearParams::num_threads)
      ("weight_layout", &LinearParams::weight_layout);

  py::class_<CpuGraph> graph(m, "CpuGraph");
  graph.def(py::init<>())
      .def("replay", [](const CpuGraph& g) { g.replay(); },
           "Run the recorded launches in order (GIL released); stops at the first error.")
      .def("replay_timed", [](const CpuGraph& g) {
             std::vector<double> seconds;
             g.replay(&seconds);
             return seconds;
           }, "replay() that returns each launch's time in seconds.")
      .def("__len__", &CpuGraph::size);
  def_cpu<ShortConvParams>(m, graph, "short_conv_cpu", cpu::run_short_conv);
  def_cpu<ShortConvUpdateParams>(m, graph, "short_conv_update_cpu", cpu::run_short_conv_update);
  def_cpu<QkNormRopeAppendParams>(m, graph, "qk_norm_rope_append_cpu", cpu::run_qk_norm_rope_append);
  def_cpu<GqaDecodeParams>(m, graph, "gqa_decode_cpu", cpu::run_gqa_decode);
  def_cpu<RmsNormParams>(m, graph, "rms_norm_cpu", cpu::run_rms_norm);
  def_cpu<LinearParams>(m, graph, "linear_cpu", cpu::run_linear);

  m.def("parallel_backend", [] { return std::string(cpu::parallel_backend()); },
        "Where the CPU kernels' threads come from: 'openmp' (the process's team, torch's) or 'pool' (our own).");
  m.def("available_isas", [] {
    int n = 0;
    const char* const* names = cpu::available_isas(&n);
    return std::vector<std::string>(names, names + n);
  }, "CPU kernel tables this CPU can run, best first.");
  m.def("default_isa", [] {
    const cpu::KernelTable* t = cpu::kernel_table(nullptr);
    if (!t) throw py::value_error("LFM25_CPU_ISA names an ISA that is unknown or not supported by this CPU");
    return std::string(t->isa);
  }, "The CPU kernel table the ops use (LFM25_CPU_ISA overrides the best available).");

#ifdef LFM25_WITH_CUDA
  m.attr("with_cuda") = true;
  def_cuda<ShortConvParams>(m, "short_conv_cuda", cuda::short_conv);
  def_cuda<ShortConvUpdateParams>(m, "short_conv_update_cuda", cuda::short_conv_update);
  def_cuda<QkNormRopeAppendParams>(m, "qk_norm_rope_append_cuda", cuda::qk_norm_rope_append);
  def_cuda<GqaDecodeParams>(m, "gqa_decode_cuda", cuda::gqa_decode);
  def_cuda<RmsNormParams>(m, "rms_norm_cuda", cuda::rms_norm);
#else
  m.attr("with_cuda") = false;
#endif
}
