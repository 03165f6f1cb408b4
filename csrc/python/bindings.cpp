// lfm25_kernels._C: the only C++ that knows Python. Generated from the op list (LFM25_OPS, lfm25/ops.h) and
// each params struct's field list: per op, the params class with its fields by name (pointers as integers),
// `<op>_cpu(params, isa)`, `CpuGraph.add(params, isa, tensors)` and, in a CUDA build, `<op>_cuda(params,
// stream)`. A kernel runs with the GIL released and a failed check becomes a ValueError naming the op (and the
// bad index value). Shape, dtype and device checks live in lfm25_kernels; index values are checked by the CPU
// kernels. The stub lfm25_kernels/_C.pyi is generated from
// this module by tools/gen_stub.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "../cpu/common/parallel.h"
#include "../cpu/kernels.h"
#include "lfm25/ops.h"
#ifdef LFM25_WITH_CUDA
#include "lfm25/cuda_ops.h"
#endif

namespace py = pybind11;
using namespace lfm25;

namespace {

// The params class of P from P::visit_fields: pointers as integers, enums (DType, WeightLayout) as int, the
// rest as they are. Class attributes: `op`; `size`; `pointer_offsets`, the byte offset of every pointer field
// (the aarch64 test runner patches them after copying the struct); `fields`, (name, kind, writes) per field
// in layout order, kind "pointer", "int", "float" or "enum", writes true for a pointer the kernel writes
// through (tools/gen_stub.py and tests/neon read it).
template <class P>
void def_params(py::module_& m, const char* name) {
  py::class_<P> cls(m, name);
  cls.def(py::init<>());
  cls.def("to_bytes", [](const P& p) { return py::bytes(reinterpret_cast<const char*>(&p), sizeof(P)); });
  std::map<std::string, size_t> offsets;
  py::list fields;
  P::visit_fields([&](const char* field, auto member) {
    using F = std::remove_reference_t<decltype(std::declval<P&>().*member)>;
    if constexpr (std::is_pointer_v<F>) {
      P probe{};
      offsets[field] = size_t(reinterpret_cast<char*>(&(probe.*member)) - reinterpret_cast<char*>(&probe));
      fields.append(py::make_tuple(field, "pointer", !std::is_const_v<std::remove_pointer_t<F>>));
      cls.def_property(
          field, [member](const P& p) { return reinterpret_cast<uintptr_t>(p.*member); },
          [member](P& p, uintptr_t v) { p.*member = reinterpret_cast<F>(v); });
    } else if constexpr (std::is_enum_v<F>) {
      fields.append(py::make_tuple(field, "enum", false));
      cls.def_property(
          field, [member](const P& p) { return int(p.*member); },
          [member](P& p, int v) { p.*member = static_cast<F>(v); });
    } else {
      fields.append(py::make_tuple(field, std::is_floating_point_v<F> ? "float" : "int", false));
      cls.def_readwrite(field, member);
    }
  });
  cls.attr("op") = cpu::Op<P>::name;
  cls.attr("size") = sizeof(P);
  cls.attr("pointer_offsets") = offsets;
  cls.attr("fields") = fields;
}

void check(Status s) {
  if (s != Status::kOk) throw py::value_error(status_message(s));
}

void check(const cpu::Check& c, const char* op) {
  if (!c.ok()) throw py::value_error(cpu::error_message(op, c));
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
// copy of its params struct, the kernel table it was recorded with and its op's name. The graph also holds
// every tensor a launch points into, and the storage under it: replay() first checks that each still has the
// data pointer and storage size of the capture, since a launch writes through the pointers it recorded (a
// tensor resized or re-pointed with set_, or a storage resized, would send it into freed memory). A storage
// reallocated moves the data pointer of every tensor on it; one freed and reallocated at the same address
// has another size unless it is as large as before.
class CpuGraph {
 public:
  template <class P>
  void add(const P& p, const std::string& isa, const py::dict& tensors) {
    const cpu::KernelTable* t = &table(isa);
    for (auto [name, tensor] : tensors) watch(cpu::Op<P>::name, py::str(name), py::reinterpret_borrow<py::object>(tensor));
    launches_.push_back({[p, t] { return cpu::run(*t, p); }, cpu::Op<P>::name});
  }

  // Every launch in order, stopping at the first error; with `seconds`, each launch's time (steady clock).
  void replay(std::vector<double>* seconds = nullptr) const {
    check_unmoved();
    cpu::Check c;
    size_t i = 0;
    {
      py::gil_scoped_release nogil;
      for (; i < launches_.size(); ++i) {
        const auto t0 = seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
        c = launches_[i].run();
        if (!c.ok()) break;
        if (seconds)
          seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    if (!c.ok()) check(c, launches_[i].op);
  }

  size_t size() const { return launches_.size(); }

 private:
  struct Launch {
    std::function<cpu::Check()> run;
    const char* op;
  };
  // A tensor a launch points into: its data_ptr method and its storage's nbytes, and what they returned at
  // capture.
  struct Watched {
    std::string what;   // "<op>'s <argument>"
    py::object tensor, data_ptr, storage_bytes;
    uintptr_t ptr;
    size_t bytes;
  };

  static uintptr_t call(const py::object& method) {
    PyObject* r = PyObject_CallNoArgs(method.ptr());
    if (!r) throw py::error_already_set();
    const uintptr_t v = PyLong_AsSize_t(r);
    Py_DECREF(r);
    return v;
  }

  void watch(const char* op, const std::string& name, py::object tensor) {
    for (const Watched& w : watched_)
      if (w.tensor.is(tensor)) return;
    Watched w{std::string(op) + "'s " + name, tensor, tensor.attr("data_ptr"),
              tensor.attr("untyped_storage")().attr("nbytes"), 0, 0};
    w.ptr = call(w.data_ptr), w.bytes = call(w.storage_bytes);
    watched_.push_back(std::move(w));
  }

  void check_unmoved() const {
    for (const Watched& w : watched_) {
      if (call(w.data_ptr) == w.ptr && call(w.storage_bytes) == w.bytes) continue;
      throw std::runtime_error("CpuGraph.replay: " + w.what +
                               " was resized, re-pointed (set_) or had its storage resized since the capture, and "
                               "the recorded launches would write through its old address; capture a new graph");
    }
  }

  std::vector<Launch> launches_;
  std::vector<Watched> watched_;
};

// <op>_cpu(params, isa) runs the kernel now; CpuGraph.add(params, isa, tensors) records it for replay().
template <class P>
void def_cpu(py::module_& m, py::class_<CpuGraph>& graph, const char* name) {
  m.def(
      name,
      [](const P& p, const std::string& isa) {
        const cpu::KernelTable& t = table(isa);
        cpu::Check c;
        {
          py::gil_scoped_release nogil;
          c = cpu::run(t, p);
        }
        check(c, cpu::Op<P>::name);
      },
      py::arg("params"), py::arg("isa") = "");
  graph.def(
      "add", [](CpuGraph& g, const P& p, const std::string& isa, const py::dict& tensors) { g.add(p, isa, tensors); },
      py::arg("params"), py::arg("isa"), py::arg("tensors"),
      "Record a launch; tensors maps each pointer field set to the tensor it points into (held and checked).");
}

#ifdef LFM25_WITH_CUDA
template <class P>
void def_cuda(py::module_& m, const char* name, Status (*run)(const P&, void*)) {
  m.def(
      name, [run](const P& p, uintptr_t stream) { check(run(p, reinterpret_cast<void*>(stream))); },
      py::arg("params"), py::arg("stream"));
}
#define LFM25_DEF_CUDA(OP, PARAMS) def_cuda<PARAMS>(m, #OP "_cuda", cuda::OP);
#else
#define LFM25_DEF_CUDA(OP, PARAMS)
#endif

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "lfm25-kernels compiled kernels (raw pointers in, status out). Use lfm25_kernels, not this module.";

  py::enum_<DType>(m, "DType").value("f32", DType::kF32).value("f16", DType::kF16).value("bf16", DType::kBF16);

#define LFM25_OP_NAME(OP, PARAMS, BACKENDS) #OP,
#define LFM25_CUDA_OP_NAME(OP, PARAMS, BACKENDS) LFM25_IF_CUDA(BACKENDS, #OP, )
  m.attr("ops") = py::tuple(py::cast(std::vector<std::string>{LFM25_OPS(LFM25_OP_NAME)}));
  m.attr("cuda_ops") = py::tuple(py::cast(std::vector<std::string>{LFM25_OPS(LFM25_CUDA_OP_NAME)}));

#define LFM25_DEF_PARAMS(OP, PARAMS, BACKENDS) def_params<PARAMS>(m, #PARAMS);
  LFM25_OPS(LFM25_DEF_PARAMS)

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
#define LFM25_DEF_CPU(OP, PARAMS, BACKENDS) def_cpu<PARAMS>(m, graph, #OP "_cpu");
  LFM25_OPS(LFM25_DEF_CPU)

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
#else
  m.attr("with_cuda") = false;
#endif
#define LFM25_DEF_CUDA_OP(OP, PARAMS, BACKENDS) LFM25_IF_CUDA(BACKENDS, LFM25_DEF_CUDA(OP, PARAMS))
  LFM25_OPS(LFM25_DEF_CUDA_OP)
}
